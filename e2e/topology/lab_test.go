package topology

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/netns"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// Every wait in these tests is bounded by one of these.
const (
	upTimeout   = 30 * time.Second // a daemon's first "forward up"
	downTimeout = 15 * time.Second // a broken chain noticed
	cmdTimeout  = 30 * time.Second // one ssh / rtunnel command
)

// snippetPath is the hub-side sshd settings every hub in these tests runs.
const snippetPath = "../../deploy/hub/sshd_config.d/rtunnel-hub.conf"

// world is one lab: a network namespace per host on one bridge, keys and
// files in a temp dir. The lab, its sshd servers and its daemons are all
// removed in t.Cleanup, also when the test fails.
type world struct {
	t   *testing.T
	lab *netns.Lab
	dir string
}

func newWorld(t *testing.T, hosts ...string) *world {
	t.Helper()
	sshdtest.Require(t)
	return &world{t: t, lab: netns.New(t, hosts...), dir: t.TempDir()}
}

func (w *world) host(name string) *netns.Host { return w.lab.Host(name) }

func (w *world) ip(name string) string { return w.host(name).IP }

func (w *world) key(name string) sshdtest.Key { return sshdtest.NewKey(w.t, w.dir, name, "ed25519") }

// hubSnippet is deploy/hub's sshd_config.d snippet without the lines the
// sshdtest harness owns (it sets Port, ListenAddress, HostKey, PidFile and
// AuthorizedKeysFile itself). Its other settings replace the harness's
// defaults (sshdtest lets Extra override them).
func hubSnippet(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(snippetPath)
	if err != nil {
		t.Fatalf("hub snippet: %v: every hub in these tests runs deploy/hub/sshd_config.d/rtunnel-hub.conf", err)
	}
	var keep []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			kw, _, _ := strings.Cut(strings.ToLower(f[0]), "=")
			switch kw {
			case "port", "listenaddress", "hostkey", "pidfile", "authorizedkeysfile", "include":
				continue
			}
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// sshd starts OpenSSH on 0.0.0.0:22 inside host's namespace. A hub (the
// vpn, Appendix A's master) runs deploy/hub's snippet, plus extra lines
// in front (sshd keeps the first value of a keyword).
func (w *world) sshd(host string, hub bool, extra string, authorized ...string) *sshdtest.Server {
	w.t.Helper()
	if hub {
		extra += hubSnippet(w.t)
	}
	return sshdtest.Start(w.t, sshdtest.Options{Name: "sshd-" + host, NetNS: w.host(host).NS, ListenAddr: "0.0.0.0", Port: 22,
		AuthorizedKeys: authorized, Extra: extra})
}

// authorizedKey is the line `rtunnel authorized-key` prints for key in role.
func (w *world) authorizedKey(role, ports string, key sshdtest.Key) string {
	w.t.Helper()
	flag := "--port"
	if strings.Contains(ports, ",") {
		flag = "--ports"
	}
	out, err := w.rtunnel("", "authorized-key", "--role", role, flag, ports, "--pubkey", key.Public)
	if err != nil {
		w.t.Fatalf("rtunnel authorized-key: %v", err)
	}
	return strings.TrimSpace(out)
}

// rtunnel runs the binary to completion (in host's namespace unless host
// is ""); err carries the exit status and stderr.
func (w *world) rtunnel(host string, args ...string) (string, error) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var cmd *exec.Cmd
	if host == "" {
		cmd = exec.CommandContext(ctx, daemontest.Binary(w.t), args...)
	} else {
		cmd = w.host(host).Command(ctx, daemontest.Binary(w.t), args...)
	}
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("rtunnel %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// hostKey names a server's host keys in known_hosts: under name, as
// [name]:port unless the port is 22 (OpenSSH's rule).
type hostKey struct {
	name string
	port int
	srv  *sshdtest.Server
}

func (w *world) knownHosts(file string, keys ...hostKey) string {
	w.t.Helper()
	var b strings.Builder
	for _, k := range keys {
		name := k.name
		if k.port != 22 {
			name = "[" + k.name + "]:" + strconv.Itoa(k.port)
		}
		for _, pub := range k.srv.HostKeyPublicLines() {
			f := strings.Fields(pub)
			fmt.Fprintf(&b, "%s %s %s\n", name, f[0], f[1])
		}
	}
	path := filepath.Join(w.dir, file)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// tunnelSpec is one tunnel of an rtunnel config.
type tunnelSpec struct {
	name     string
	server   string
	jump     []string // hops as ssh -J writes them
	key      sshdtest.Key
	kh       string
	forwards [][2]string // remote, local
	extra    string      // more tunnel keys, each line indented by 4 spaces
}

// config writes an rtunnel config with quick keepalives and backoff.
func (w *world) config(file string, tunnels ...tunnelSpec) string {
	w.t.Helper()
	var b strings.Builder
	b.WriteString("log: {level: debug, format: json}\nshutdown_grace: 1s\ntunnels:\n")
	for _, t := range tunnels {
		fmt.Fprintf(&b, "  - name: %s\n    server: %s\n    identity: %s\n    known_hosts: %s\n", t.name, t.server, t.key.Private, t.kh)
		if len(t.jump) > 0 {
			fmt.Fprintf(&b, "    jump: [%s]\n", strings.Join(t.jump, ", "))
		}
		b.WriteString("    connect_timeout: 5s\n    keepalive: {interval: 1s, count_max: 3}\n    forward_retry: 300ms\n")
		b.WriteString("    backoff: {initial: 200ms, max: 1s, multiplier: 2, jitter: 0.1, reset_after: 10s}\n")
		b.WriteString(t.extra)
		b.WriteString("    forwards:\n")
		for _, f := range t.forwards {
			fmt.Fprintf(&b, "      - remote: %s\n        local: %s\n", f[0], f[1])
		}
	}
	path := filepath.Join(w.dir, file)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// up starts `rtunnel up --config cfg` inside host's namespace.
func (w *world) up(host, cfg string) *daemontest.Daemon {
	w.t.Helper()
	return daemontest.StartInNetns(w.t, w.host(host).NS, []string{"up", "--config", cfg})
}

// ssh runs the real OpenSSH client inside host's namespace with only key
// and known_hosts kh (sshdtest.SSHCommand's options) and returns stdout.
func (w *world) ssh(host string, key sshdtest.Key, kh string, args ...string) (string, error) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	base := sshdtest.SSHCommand(ctx, key, kh, args...)
	return w.run(ctx, host, base.Path, base.Args[1:]...)
}

// sshF runs ssh -F config inside host's namespace: the way to give a
// ProxyJump its options too (ssh passes -F on to the jump, not -o).
func (w *world) sshF(host, config string, args ...string) (string, error) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	path, err := exec.LookPath("ssh")
	if err != nil {
		w.t.Fatal(err)
	}
	return w.run(ctx, host, path, append([]string{"-F", config}, args...)...)
}

func (w *world) run(ctx context.Context, host, name string, args ...string) (string, error) {
	cmd := w.host(host).Command(ctx, name, args...)
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// whereAmI is the command run on the far end: its output names the
// namespace (so the host) the login landed on.
const whereAmI = "echo landed; ip -4 -o addr show dev eth0"

// wantLanded fails unless out is whereAmI's output on host.
func (w *world) wantLanded(out, host string) {
	w.t.Helper()
	if !strings.HasPrefix(out, "landed\n") || !strings.Contains(out, " inet "+w.ip(host)+"/") {
		w.t.Fatalf("login did not land on %s (%s); it printed %q", host, w.ip(host), out)
	}
}

// clientConfig writes an ssh_config for the master's ssh with key and kh
// for every host, after the Host blocks in head (ssh keeps the first value).
func (w *world) clientConfig(file, head string, key sshdtest.Key, kh string) string {
	w.t.Helper()
	cfg := head + fmt.Sprintf(`
Host *
    IdentityFile %s
    IdentitiesOnly yes
    UserKnownHostsFile %s
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 10
`, key.Private, kh)
	path := filepath.Join(w.dir, file)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// connsOf counts the established TCP connections that process pid holds
// in host's namespace: a torn-down chain must leave none behind.
func (w *world) connsOf(host string, pid int) []string {
	w.t.Helper()
	out := w.host(host).Run("ss", "-Htnp", "state", "established")
	var mine []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "pid="+strconv.Itoa(pid)+",") {
			mine = append(mine, strings.Join(strings.Fields(l), " "))
		}
	}
	return mine
}

// waitFor polls cond (bounded) and fails the test with what if it never holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countMsg counts log entries with this msg.
func countMsg(d *daemontest.Daemon, from int, msg string) int {
	n := 0
	for _, e := range d.Entries(from) {
		if e.Msg() == msg {
			n++
		}
	}
	return n
}
