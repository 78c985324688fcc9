package faults

import (
	"bufio"
	"context"
	"fmt"
	"github.com/rtunnel/rtunnel/internal/tcptest"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/netns"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// tunnelPort is the guide's port: what rtunnel asks the hub to listen on
// (localhost:2220 in the hub's namespace), the master's way in.
const tunnelPort = 2220

// lab is the guide's Direct topology in two namespaces on one bridge: the
// hub (a real sshd, the guide's master) at 198.18.0.1 and the remote
// (rtunnel and its local targets) at 198.18.0.2. The test process reaches
// into either namespace with inNS.
type lab struct {
	net         *netns.Lab
	hub, remote *netns.Host
	dir         string
	sshd        *sshdtest.Server
	tunnelKey   sshdtest.Key
	knownHosts  string
}

type labOpts struct {
	hubExtra string // sshd_config lines, e.g. ClientAliveInterval
	ports    []int  // permitlisten ports; default tunnelPort
	hostName string // the name known_hosts holds for the hub; default its IP
}

func newLab(t *testing.T, o labOpts) *lab {
	t.Helper()
	sshdtest.Require(t)
	n := netns.New(t, "hub", "remote")
	l := &lab{net: n, hub: n.Host("hub"), remote: n.Host("remote"), dir: t.TempDir()}
	l.tunnelKey = sshdtest.NewKey(t, l.dir, "id_tunnel", "ed25519")
	if len(o.ports) == 0 {
		o.ports = []int{tunnelPort}
	}
	// The guide's locked-down line, with one permitlisten per port.
	opts := "restrict,port-forwarding"
	for _, p := range o.ports {
		opts += fmt.Sprintf(`,permitlisten="localhost:%d"`, p)
	}
	opts += `,permitopen="255.255.255.255:9",command="/bin/false"`
	l.sshd = sshdtest.Start(t, sshdtest.Options{Name: "hub", NetNS: l.hub.NS, ListenAddr: l.hub.IP,
		AuthorizedKeys: []string{opts + " " + l.tunnelKey.PublicLine}, Extra: o.hubExtra})
	l.knownHosts = filepath.Join(l.dir, "known_hosts")
	name := o.hostName
	if name == "" {
		name = l.hub.IP
	}
	l.sshd.WriteKnownHosts(t, l.knownHosts, name)
	return l
}

// authorizedLine is the hub's authorized_keys line for the tunnel key.
func (l *lab) authorizedLine() string {
	return `restrict,port-forwarding,permitlisten="localhost:2220",permitopen="255.255.255.255:9",command="/bin/false" ` + l.tunnelKey.PublicLine
}

// tun is one tunnel's settings; empty fields keep rtunnel's defaults.
type tun struct {
	server         string      // user@host:port; default root@HUB_IP:SSHD_PORT
	knownHosts     string      // default the lab's
	forwards       [][2]string // remote, local
	keepalive      string      // YAML flow mapping; default {interval: 1s, count_max: 3}
	connectTimeout string
	backoff        string // YAML flow mapping
	extra          string // more tunnel keys, each line indented by 4 spaces
	grace          string // shutdown_grace; default 2s
	metrics        bool   // serve metrics on 127.0.0.1:9810 in the remote's namespace
}

const metricsAddr = "127.0.0.1:9810"

// config writes an rtunnel config and returns its path.
func (l *lab) config(t *testing.T, c tun) string {
	t.Helper()
	if c.server == "" {
		c.server = fmt.Sprintf("root@%s:%d", l.hub.IP, l.sshd.Port)
	}
	if c.knownHosts == "" {
		c.knownHosts = l.knownHosts
	}
	if c.keepalive == "" {
		c.keepalive = "{interval: 1s, count_max: 3}"
	}
	if c.grace == "" {
		c.grace = "2s"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log: {level: debug, format: json}\nshutdown_grace: %s\n", c.grace)
	if c.metrics {
		fmt.Fprintf(&b, "metrics: {listen: %q}\n", metricsAddr)
	}
	fmt.Fprintf(&b, "tunnels:\n  - name: hub\n    server: %s\n    identity: %s\n    known_hosts: %s\n", c.server, l.tunnelKey.Private, c.knownHosts)
	fmt.Fprintf(&b, "    keepalive: %s\n", c.keepalive)
	if c.connectTimeout != "" {
		fmt.Fprintf(&b, "    connect_timeout: %s\n", c.connectTimeout)
	}
	if c.backoff != "" {
		fmt.Fprintf(&b, "    backoff: %s\n", c.backoff)
	}
	b.WriteString("    forwards:\n")
	for _, f := range c.forwards {
		fmt.Fprintf(&b, "      - remote: %s\n        local: %s\n", f[0], f[1])
	}
	b.WriteString(c.extra)
	path := filepath.Join(l.dir, fmt.Sprintf("rtunnel-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// up starts rtunnel in the remote's namespace.
func (l *lab) up(t *testing.T, c tun) *daemontest.Daemon {
	t.Helper()
	return daemontest.StartInNetns(t, l.remote.NS, []string{"up", "--config", l.config(t, c)})
}

// sysSetns is setns(2) on linux/amd64 (the syscall package lacks the name).
const sysSetns = 308

// inNS runs fn on an OS thread moved into the network namespace ns: the
// sockets fn creates live there. The thread moves back before it is
// unlocked; if it cannot, the goroutine exits still locked and Go discards
// the thread. (No thread may stay behind: the lab's cleanup kills every
// process with a thread group leader in its namespaces.)
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer f.Close()
		if err := setns(f); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = fn()
		if setns(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func setns(f *os.File) error {
	if _, _, e := syscall.Syscall(sysSetns, f.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

// dialHub connects to localhost:port in the hub's namespace: the master's
// side of the tunnel.
func (l *lab) dialHub(port int, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNS(l.hub.NS, func() error {
		var err error
		c, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), timeout)
		return err
	})
	return c, err
}

// listenIn listens on 127.0.0.1:port (0: any) in the namespace ns.
func listenIn(t *testing.T, ns string, port int) net.Listener {
	t.Helper()
	return listenInAddr(t, ns, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// listenInAddr listens on addr in the namespace ns.
func listenInAddr(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := inNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serveRemote is a target on the remote's loopback: what a forward's
// local: points at.
func (l *lab) serveRemote(t *testing.T, handle func(i int, c net.Conn)) *tcptest.Server {
	t.Helper()
	return tcptest.Serve(t, listenIn(t, l.remote.NS, 0), handle)
}

// echo writes back what it reads.
var echo = tcptest.Echo

// echoOnce checks one short round trip through the tunnel.
func (l *lab) echoOnce(timeout time.Duration) error {
	c, err := l.dialHub(tunnelPort, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo returned %q", line)
	}
	return nil
}

// waitTraffic polls with short round trips until one succeeds, and
// returns when it did.
func (l *lab) waitTraffic(t *testing.T, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = l.echoOnce(400 * time.Millisecond); err == nil {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no traffic through the tunnel within %v: %v", timeout, err)
	return time.Time{}
}

// logTime is when rtunnel wrote a log entry (its own clock).
func logTime(t *testing.T, e daemontest.Entry) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, e.Str("time"))
	if err != nil {
		t.Fatalf("log entry without a time: %v", e)
	}
	return at
}

// entries returns the log entries with msg after index from.
func entries(d *daemontest.Daemon, from int, msg string) []daemontest.Entry {
	var out []daemontest.Entry
	for _, e := range d.Entries(from) {
		if e.Msg() == msg {
			out = append(out, e)
		}
	}
	return out
}

// killSessions kills the hub's per-connection sshd processes (the listener
// stays): the tunnel's session ends at once, as when the hub drops it.
func (l *lab) killSessions(t *testing.T) {
	t.Helper()
	pids := l.sshd.SessionPIDs()
	if len(pids) == 0 {
		t.Fatal("the hub has no session to kill")
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// nft loads an nft script into a namespace (the lab's cleanup deletes the
// namespace and every table in it).
func nft(t *testing.T, h *netns.Host, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := h.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s\n%s", h.Name, err, out, script)
	}
}

func nftDelete(t *testing.T, h *netns.Host, table string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := h.Command(ctx, "nft", "delete", "table", "inet", table).CombinedOutput(); err != nil {
		t.Fatalf("nft delete table %s in %s: %v\n%s", table, h.Name, err, out)
	}
}

// procStats is what the kernel says about the rtunnel process.
type procStats struct {
	fds     int
	threads int
	rssKiB  int
	cpu     time.Duration // user + system
}

func readProc(t *testing.T, pid int) procStats {
	t.Helper()
	var s procStats
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("rtunnel pid %d: %v", pid, err)
	}
	s.fds = len(ents)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "Threads:":
			s.threads, _ = strconv.Atoi(f[1])
		case "VmRSS:":
			s.rssKiB, _ = strconv.Atoi(f[1])
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command's closing parenthesis: utime is the 12th,
	// stime the 13th (clock ticks, 100 a second on Linux).
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
		f := strings.Fields(string(stat)[i+1:])
		if len(f) > 12 {
			u, _ := strconv.Atoi(f[11])
			sy, _ := strconv.Atoi(f[12])
			s.cpu = time.Duration(u+sy) * 10 * time.Millisecond
		}
	}
	return s
}

// metrics scrapes rtunnel's /metrics in the remote's namespace and returns
// the unlabelled samples (go_goroutines, process_open_fds, ...).
func (l *lab) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNS(l.remote.NS, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape rtunnel metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "{") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}

// listenInode returns the inode of the hub's listening socket on
// 127.0.0.1:port (0 if none), from the hub namespace's /proc/net/tcp.
func (l *lab) listenInode(port int) uint64 {
	pid := l.sshd.PID()
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == want && f[3] == "0A" { // 0A: LISTEN
			ino, _ := strconv.ParseUint(f[9], 10, 64)
			return ino
		}
	}
	return 0
}

// figure logs one measured figure in a fixed form, collected into
// docs/RELIABILITY.md.
func figure(t *testing.T, name string, v any) {
	t.Helper()
	t.Logf("FIGURE %s: %v", name, v)
}
