package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// Ciphers every client is held to: ssh and autossh by -c, rtunnel by the
// hub's own Ciphers line (x/crypto offers both; rtunnel has no cipher
// option).
const (
	cipherGCM    = "aes128-gcm@openssh.com"
	cipherChacha = "chacha20-poly1305@openssh.com"
)

// world is the hub side: one sshd per cipher plus one that the recovery
// workload kills and restarts, all accepting the tunnel key with the setup
// guide's locked-down line, and the local target on the remote side.
type world struct {
	dir    string
	key    sshdtest.Key
	pat    *pattern
	target *target
	hubs   map[string]*hub // by cipher, and "recovery"
}

type hub struct {
	name   string
	cipher string
	srv    *sshdtest.Server
	kh     string // known_hosts for this hub
}

func newWorld(t *testing.T, verify string) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), pat: newPattern(), hubs: map[string]*hub{}}
	w.key = sshdtest.NewKey(t, w.dir, "id_tunnel", "ed25519")
	w.target = startTarget(t, w.pat, verify)
	for _, h := range []struct{ name, cipher string }{
		{cipherGCM, cipherGCM}, {cipherChacha, cipherChacha}, {"recovery", cipherGCM},
	} {
		srv := sshdtest.Start(t, sshdtest.Options{Name: "hub-" + strings.SplitN(h.name, "@", 2)[0],
			AuthorizedKeys: []string{w.line(freePorts(t, 1))},
			Extra:          "Ciphers " + h.cipher + "\n"})
		kh := filepath.Join(w.dir, "known_hosts-"+strconv.Itoa(srv.Port))
		srv.WriteKnownHosts(t, kh, "127.0.0.1")
		w.hubs[h.name] = &hub{name: h.name, cipher: h.cipher, srv: srv, kh: kh}
	}
	return w
}

// line is the guide's authorized_keys line, with one permitlisten per port.
func (w *world) line(ports []int) string {
	var b strings.Builder
	b.WriteString("restrict,port-forwarding,")
	for _, p := range ports {
		fmt.Fprintf(&b, `permitlisten="localhost:%d",`, p)
	}
	b.WriteString(`permitopen="255.255.255.255:9",command="/bin/false" `)
	b.WriteString(w.key.PublicLine)
	return b.String()
}

// clientSpec names a client to measure: "rtunnel", "ssh" or "autossh", with
// optional environment, written "rtunnel:GOMAXPROCS=1:GOGC=200".
type clientSpec struct {
	name string
	kind string
	env  []string
}

func parseClients(s string) ([]clientSpec, error) {
	var out []clientSpec
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		parts := strings.Split(f, ":")
		switch parts[0] {
		case "rtunnel", "ssh", "autossh":
		default:
			return nil, fmt.Errorf("unknown client %q (want rtunnel, ssh or autossh, optionally with :VAR=value)", parts[0])
		}
		for _, e := range parts[1:] {
			if !strings.Contains(e, "=") {
				return nil, fmt.Errorf("client %q: %q is not VAR=value", f, e)
			}
		}
		out = append(out, clientSpec{name: f, kind: parts[0], env: parts[1:]})
	}
	return out, nil
}

// running is one started client with its forwards.
type running struct {
	spec  clientSpec
	hub   *hub
	ports []int // hub-side forwarded ports, 127.0.0.1:P
	pid   int
	stop  func()
	log   func() string
}

func (r *running) fwdAddr(i int) string { return "127.0.0.1:" + strconv.Itoa(r.ports[i]) }

const readyTimeout = 30 * time.Second

// start runs the client against h with nfwd forwards, all to the target,
// and returns once every forward carries an echo.
func (w *world) start(t *testing.T, spec clientSpec, h *hub, nfwd int) *running {
	t.Helper()
	r := &running{spec: spec, hub: h}
	r.ports = freePorts(t, nfwd)
	h.srv.SetAuthorizedKeys(t, []string{w.line(r.ports)})
	switch spec.kind {
	case "rtunnel":
		w.startRtunnel(t, r)
	default:
		w.startSSH(t, r)
	}
	t.Cleanup(r.stop)
	deadline := time.Now().Add(readyTimeout)
	for i := range r.ports {
		if err := waitEcho(r.fwdAddr(i), deadline); err != nil {
			r.stop()
			t.Fatalf("%s: forward %s not carrying traffic after %v: %v\nclient log:\n%s", spec.name, r.fwdAddr(i), readyTimeout, err, r.log())
		}
	}
	return r
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago: all are held at once, so none is handed out twice.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// waitEcho polls (20 ms) until an echo through addr succeeds or deadline.
func waitEcho(addr string, deadline time.Time) error {
	msg := []byte("ready?")
	back := make([]byte, len(msg))
	for {
		c, err := dialFwd(addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			err = echo(c, msg, back)
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *world) startRtunnel(t *testing.T, r *running) {
	t.Helper()
	var b strings.Builder
	// Production defaults everywhere except what the peers are given too:
	// keepalive 15 s x 3 (ServerAliveInterval 15, ServerAliveCountMax 3) and
	// exit_on_forward_failure (ExitOnForwardFailure=yes).
	b.WriteString("log: {level: info, format: json}\nshutdown_grace: 1s\ntunnels:\n")
	fmt.Fprintf(&b, "  - name: bench\n    server: root@127.0.0.1:%d\n    identity: %s\n    known_hosts: %s\n",
		r.hub.srv.Port, w.key.Private, r.hub.kh)
	b.WriteString("    keepalive: {interval: 15s, count_max: 3}\n    exit_on_forward_failure: true\n    forwards:\n")
	for _, p := range r.ports {
		fmt.Fprintf(&b, "      - remote: localhost:%d\n        local: %s\n", p, w.target.addr())
	}
	path := filepath.Join(w.dir, fmt.Sprintf("rtunnel-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, []string{"up", "--config", path}, r.spec.env...)
	r.pid = d.PID()
	r.log = d.Raw
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			d.Signal(syscall.SIGTERM)
			if _, ok := d.Wait(10 * time.Second); !ok {
				d.Signal(syscall.SIGKILL)
				d.Wait(10 * time.Second)
			}
		})
	}
}

func (w *world) startSSH(t *testing.T, r *running) {
	t.Helper()
	args := []string{"-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3",
		"-c", r.hub.cipher, "-p", strconv.Itoa(r.hub.srv.Port)}
	for _, p := range r.ports {
		args = append(args, "-R", fmt.Sprintf("localhost:%d:%s", p, w.target.addr()))
	}
	args = append(args, "root@127.0.0.1")
	cmd := sshdtest.SSHCommand(context.Background(), w.key, r.hub.kh, args...)
	cmd.Env = append(os.Environ(), r.spec.env...)
	if r.spec.kind == "autossh" {
		path, err := exec.LookPath("autossh")
		if err != nil {
			t.Fatalf("autossh: %v", err)
		}
		// -M 0: no monitor port, ssh's ServerAlive does the watching.
		// AUTOSSH_GATETIME=0: keep retrying even if the first ssh fails fast
		// (autossh's usual setting under a service manager).
		sshArgs := cmd.Args
		cmd = exec.Command(path, append([]string{"-M", "0"}, sshArgs[1:]...)...)
		cmd.Env = append(os.Environ(), "AUTOSSH_PATH="+sshArgs[0], "AUTOSSH_GATETIME=0")
		cmd.Env = append(cmd.Env, r.spec.env...)
	}
	var out lockedBuf
	cmd.Stdout = &out
	cmd.Stderr = &out
	// Own process group: stopping it reaches autossh's ssh too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", r.spec.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	r.pid = cmd.Process.Pid
	r.log = out.String
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-r.pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-r.pid, syscall.SIGKILL)
				<-done
			}
			// autossh's ssh may outlive autossh by a moment.
			_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		})
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
