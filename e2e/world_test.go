package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
	"github.com/rtunnel/rtunnel/internal/tcptest"
)

// guideLine is the setup guide's locked-down authorized_keys line.
func guideLine(permitlisten, permitopen string, pub string) string {
	return fmt.Sprintf(`restrict,port-forwarding,permitlisten="%s",permitopen="%s",command="/bin/false" %s`, permitlisten, permitopen, pub)
}

// direct is the Direct topology on loopback: a hub sshd (the guide's
// master) that accepts the tunnel key with the guide's line, and a second
// sshd standing for the remote's own sshd.
type direct struct {
	dir        string
	hub        *sshdtest.Server
	remote     *sshdtest.Server
	tunnelKey  sshdtest.Key
	masterKey  sshdtest.Key
	tunnelPort int
	knownHosts string // rtunnel's: the hub's key
	masterKH   string // master's: the remote sshd's key as [localhost]:tunnelPort
}

type directOpts struct {
	hubExtra string
}

func newDirect(t *testing.T, o directOpts) *direct {
	t.Helper()
	sshdtest.Require(t)
	w := &direct{dir: t.TempDir()}
	w.tunnelKey = sshdtest.NewKey(t, w.dir, "id_tunnel", "ed25519")
	w.masterKey = sshdtest.NewKey(t, w.dir, "id_master", "ed25519")
	w.tunnelPort = sshdtest.FreePort(t)
	w.hub = sshdtest.Start(t, sshdtest.Options{Name: "hub",
		AuthorizedKeys: []string{guideLine("localhost:"+strconv.Itoa(w.tunnelPort), "255.255.255.255:9", w.tunnelKey.PublicLine)},
		Extra:          o.hubExtra})
	w.remote = sshdtest.Start(t, sshdtest.Options{Name: "remote", AuthorizedKeys: []string{w.masterKey.PublicLine}})
	w.knownHosts = filepath.Join(w.dir, "known_hosts")
	w.hub.WriteKnownHosts(t, w.knownHosts, "127.0.0.1")
	w.masterKH = filepath.Join(w.dir, "master_known_hosts")
	lines := w.remote.KnownHostsLines("localhost")
	for i, l := range lines {
		// The remote's key, as the master sees it through the tunnel port.
		f := strings.Fields(l)
		lines[i] = fmt.Sprintf("[localhost]:%d %s %s", w.tunnelPort, f[1], f[2])
	}
	if err := os.WriteFile(w.masterKH, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// tunnelYAML is one tunnel's config; extra is indented tunnel keys.
func (w *direct) config(t *testing.T, forwards [][2]string, extra string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "log: {level: debug, format: json}\nshutdown_grace: 2s\ntunnels:\n")
	fmt.Fprintf(&b, "  - name: hub\n    server: root@127.0.0.1:%d\n    identity: %s\n    known_hosts: %s\n",
		w.hub.Port, w.tunnelKey.Private, w.knownHosts)
	fmt.Fprintf(&b, "    connect_timeout: 5s\n    keepalive: {interval: 1s, count_max: 3}\n")
	fmt.Fprintf(&b, "    backoff: {initial: 200ms, max: 2s, multiplier: 2, jitter: 0.1, reset_after: 10s}\n")
	b.WriteString("    forwards:\n")
	for _, f := range forwards {
		fmt.Fprintf(&b, "      - remote: %s\n        local: %s\n", f[0], f[1])
	}
	b.WriteString(extra)
	path := filepath.Join(w.dir, fmt.Sprintf("rtunnel-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sshForward is the usual forward: the hub's localhost:tunnelPort to the
// remote's sshd.
func (w *direct) sshForward() [2]string {
	return [2]string{"localhost:" + strconv.Itoa(w.tunnelPort), w.remote.Addr}
}

func (w *direct) up(t *testing.T, cfg string) *daemontest.Daemon {
	t.Helper()
	return daemontest.Start(t, []string{"up", "--config", cfg})
}

// waitForwardUp waits for the "forward up" log line after index from.
func waitForwardUp(t *testing.T, d *daemontest.Daemon, from int, timeout time.Duration) (int, time.Time) {
	t.Helper()
	_, i, at := d.WaitMsg(from, timeout, "forward up")
	return i, at
}

// masterSSH runs a command on the remote through the tunnel, as the master
// would: ssh -p tunnelPort root@localhost.
func (w *direct) masterSSH(ctx context.Context, stdin io.Reader, command string) ([]byte, error) {
	cmd := sshdtest.SSHCommand(ctx, w.masterKey, w.masterKH, "-p", strconv.Itoa(w.tunnelPort), "root@localhost", command)
	// 64 MiB through stdout into a bytes.Buffer under -race on a busy
	// machine: ssh has exited 0 and the copy can still be draining after
	// SSHCommand's 2 s (seen as "WaitDelay expired before I/O complete").
	// The caller's ctx still bounds the whole command; the bytes are
	// checked by sha256.
	cmd.WaitDelay = 20 * time.Second
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return out, nil
}

// echoLogin checks a real login through the tunnel answers with the marker.
func (w *direct) echoLogin(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := w.masterSSH(ctx, nil, "echo through-the-tunnel $((6*7))")
	if err != nil {
		t.Fatalf("ssh through the tunnel: %v", err)
	}
	if got := string(out); got != "through-the-tunnel 42\n" {
		t.Fatalf("ssh through the tunnel printed %q", got)
	}
}

// serveLocal runs a TCP server on loopback (addr "" = a free port) that
// the tunnel forwards to.
func serveLocal(t *testing.T, addr string, handle func(net.Conn)) *tcptest.Server {
	t.Helper()
	return tcptest.Listen(t, addr, func(_ int, c net.Conn) { handle(c) })
}
