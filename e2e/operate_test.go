package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// notifySocket is a NOTIFY_SOCKET the test owns: every datagram rtunnel
// sends to "systemd" arrives on msgs.
type notifySocket struct {
	path string
	conn *net.UnixConn
	msgs chan string
	done chan struct{}
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, conn: conn, msgs: make(chan string, 256), done: make(chan struct{})}
	go func() {
		defer close(n.done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			select {
			case n.msgs <- string(buf[:k]):
			default: // the test stopped reading; drop
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-n.done })
	return n
}

// expect waits for a datagram with prefix and returns every datagram seen
// up to and including it.
func (n *notifySocket) expect(t *testing.T, prefix string, timeout time.Duration) []string {
	t.Helper()
	var seen []string
	deadline := time.After(timeout)
	for {
		select {
		case m := <-n.msgs:
			seen = append(seen, m)
			if strings.HasPrefix(m, prefix) {
				return seen
			}
		case <-deadline:
			t.Fatalf("no %q from rtunnel on NOTIFY_SOCKET within %s; got %q", prefix, timeout, seen)
		}
	}
}

// scrape reads /metrics and returns "name{labels}" -> value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, "rtunnel_") && !strings.HasPrefix(line, "go_gc_gogc_percent ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metric line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// withMetrics turns on the metrics endpoint, on a free loopback port, in
// the config file cfg, and returns its address.
func withMetrics(t *testing.T, cfg string) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(sshdtest.FreePort(t))
	data, err := os.ReadFile(cfg)
	if err == nil {
		err = os.WriteFile(cfg, append([]byte("metrics: {listen: "+addr+"}\n"), data...), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitMetric polls the endpoint (a measurement, bounded) until metric has
// the wanted value.
func waitMetric(t *testing.T, addr, metric string, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got float64
	var ok bool
	for time.Now().Before(deadline) {
		got, ok = scrape(t, addr)[metric]
		if ok && got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s = %v (present %v), want %v", metric, got, ok, want)
}

var ipLabel = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+"`)

// Metrics, readiness and systemd notifications follow the tunnel through
// up, traffic, down and reconnect, then stop.
func TestMetricsAndNotifyLifecycle(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	srv := serveLocal(t, "", func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d bytes\n", n)
	})
	cfg := w.config(t, [][2]string{{"localhost:" + strconv.Itoa(w.tunnelPort), srv.Addr()}}, "")
	metricsAddr := withMetrics(t, cfg)
	ns := newNotifySocket(t)
	d := daemontest.Start(t, []string{"up", "--config", cfg}, "NOTIFY_SOCKET="+ns.path)

	seen := ns.expect(t, "READY=1", 20*time.Second)
	t.Logf("notify before ready: %q", seen)
	waitForwardUp(t, d, 0, 10*time.Second)
	fwd := fmt.Sprintf(`forward="localhost:%d->%s"`, w.tunnelPort, srv.Addr())
	waitMetric(t, metricsAddr, `rtunnel_tunnel_up{tunnel="hub"}`, 1, 5*time.Second)
	ns.expect(t, "STATUS=1/1 tunnels up", 5*time.Second)
	m := scrape(t, metricsAddr)
	if v := m[`rtunnel_forward_up{`+fwd+`,tunnel="hub"}`]; v != 1 {
		t.Errorf("forward_up = %v, want 1; metrics: %v", v, keys(m, "forward_up"))
	}
	if v := m[`rtunnel_connect_attempts_total{result="ok",tunnel="hub"}`]; v != 1 {
		t.Errorf(`connect_attempts_total{result="ok"} = %v, want 1`, v)
	}
	if code, body := httpGet(t, "http://"+metricsAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz while up: %d %q", code, body)
	}

	// Exactly 100000 bytes in, one reply out.
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(w.tunnelPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(make([]byte, 100000))
	c.(*net.TCPConn).CloseWrite()
	reply, _ := io.ReadAll(c)
	c.Close()
	if string(reply) != "got 100000 bytes\n" {
		t.Fatalf("reply %q", reply)
	}
	waitMetric(t, metricsAddr, `rtunnel_bytes_total{direction="in",`+fwd+`,tunnel="hub"}`, 100000, 5*time.Second)
	waitMetric(t, metricsAddr, `rtunnel_bytes_total{direction="out",`+fwd+`,tunnel="hub"}`, float64(len(reply)), 5*time.Second)
	waitMetric(t, metricsAddr, `rtunnel_connections_total{`+fwd+`,tunnel="hub"}`, 1, 5*time.Second)
	for k := range scrape(t, metricsAddr) {
		if ipLabel.MatchString(strings.ReplaceAll(k, srv.Addr(), "")) {
			t.Errorf("a metric label carries a peer address: %s", k)
		}
	}

	// rtunnel status reads the same state from the daemon.
	st := daemontest.Start(t, []string{"status", "--config", cfg})
	if code, ok := st.Wait(10 * time.Second); !ok || code != 0 {
		t.Fatalf("rtunnel status: exit %d (exited %v)\n%s", code, ok, st.Raw())
	}
	table := st.Stdout()
	for _, want := range []string{"TUNNEL", "hub", "localhost:" + strconv.Itoa(w.tunnelPort) + "->" + srv.Addr(), "up", "97.7 KiB"} {
		if !strings.Contains(table, want) {
			t.Errorf("rtunnel status lacks %q:\n%s", want, table)
		}
	}
	stj := daemontest.Start(t, []string{"status", "--json", "--config", cfg})
	if code, ok := stj.Wait(10 * time.Second); !ok || code != 0 {
		t.Fatalf("rtunnel status --json: exit %d", code)
	}
	var report struct {
		Tunnels []struct {
			Name     string `json:"name"`
			State    string `json:"state"`
			Forwards []struct {
				Name    string `json:"name"`
				Up      bool   `json:"up"`
				BytesIn int64  `json:"bytes_in"`
			} `json:"forwards"`
		} `json:"tunnels"`
	}
	if err := json.Unmarshal([]byte(stj.Stdout()), &report); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stj.Stdout())
	}
	status := report.Tunnels
	if len(status) != 1 || status[0].State != "up" || len(status[0].Forwards) != 1 || !status[0].Forwards[0].Up || status[0].Forwards[0].BytesIn != 100000 {
		t.Errorf("status --json = %+v", status)
	}

	// Down: the hub dies.
	w.hub.Kill()
	waitMetric(t, metricsAddr, `rtunnel_tunnel_up{tunnel="hub"}`, 0, 10*time.Second)
	if code, body := httpGet(t, "http://"+metricsAddr+"/readyz"); code != 503 || !strings.Contains(body, "hub") {
		t.Errorf("/readyz while down: %d %q, want 503 naming the tunnel", code, body)
	}
	ns.expect(t, "STATUS=0/1 tunnels up", 5*time.Second)
	if v := scrape(t, metricsAddr)[`rtunnel_reconnects_total{tunnel="hub"}`]; v < 1 {
		t.Errorf("reconnects_total = %v after the hub died", v)
	}

	// And back.
	w.hub.Restart(t)
	waitMetric(t, metricsAddr, `rtunnel_tunnel_up{tunnel="hub"}`, 1, 20*time.Second)
	waitMetric(t, metricsAddr, `rtunnel_forward_up{`+fwd+`,tunnel="hub"}`, 1, 5*time.Second)
	if v := scrape(t, metricsAddr)[`rtunnel_connect_attempts_total{result="ok",tunnel="hub"}`]; v != 2 {
		t.Errorf(`connect_attempts_total{result="ok"} = %v after the reconnect, want 2`, v)
	}

	d.Signal(syscall.SIGTERM)
	ns.expect(t, "STOPPING=1", 5*time.Second)
	if code, ok := d.Wait(10 * time.Second); !ok || code != 0 {
		t.Fatalf("exit %d (exited %v) after SIGTERM", code, ok)
	}
}

func keys(m map[string]float64, substr string) []string {
	var out []string
	for k := range m {
		if strings.Contains(k, substr) {
			out = append(out, k)
		}
	}
	return out
}

// SIGHUP: an unchanged tunnel keeps its connection, a changed one restarts,
// a bad new config is refused and the old one keeps running.
func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	dir := t.TempDir()
	key := sshdtest.NewKey(t, dir, "id", "ed25519")
	p1, p2 := sshdtest.FreePort(t), sshdtest.FreePort(t)
	line := fmt.Sprintf(`restrict,port-forwarding,permitlisten="localhost:%d",permitlisten="localhost:%d",permitopen="255.255.255.255:9",command="/bin/false" %s`, p1, p2, key.PublicLine)
	hub := sshdtest.Start(t, sshdtest.Options{Name: "hub", AuthorizedKeys: []string{line}})
	kh := filepath.Join(dir, "known_hosts")
	hub.WriteKnownHosts(t, kh, "127.0.0.1")
	target := serveLocal(t, "", func(c net.Conn) { io.WriteString(c, "hello\n") })
	write := func(intervalB string) string {
		cfg := fmt.Sprintf(`log: {level: debug, format: json}
tunnels:
  - name: a
    server: root@127.0.0.1:%[1]d
    identity: %[2]s
    known_hosts: %[3]s
    forwards: [{remote: "localhost:%[4]d", local: "%[6]s"}]
  - name: b
    server: root@127.0.0.1:%[1]d
    identity: %[2]s
    known_hosts: %[3]s
    keepalive: {interval: %[7]s, count_max: 3}
    forwards: [{remote: "localhost:%[5]d", local: "%[6]s"}]
`, hub.Port, key.Private, kh, p1, p2, target.Addr(), intervalB)
		path := filepath.Join(dir, "rtunnel.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	path := write("5s")
	ns := newNotifySocket(t)
	d := daemontest.Start(t, []string{"up", "--config", path}, "NOTIFY_SOCKET="+ns.path)
	ns.expect(t, "READY=1", 20*time.Second)
	upFor := func(from int, name string) int {
		_, i, _ := d.WaitFrom(from, 10*time.Second, "forward up of "+name, func(e daemontest.Entry) bool {
			return e.Msg() == "forward up" && e.Str("tunnel") == name
		})
		return i
	}
	upFor(0, "a")
	upFor(0, "b")

	mark := d.Mark()
	write("7s")
	d.Signal(syscall.SIGHUP)
	seen := ns.expect(t, "READY=1", 10*time.Second)
	if !strings.HasPrefix(seen[0], "RELOADING=1") {
		t.Errorf("reload notifications %q, want RELOADING=1 first", seen)
	}
	e, _, _ := d.WaitMsg(mark, 10*time.Second, "reloaded")
	if e.Str("kept") != "1" || e.Str("restarted") != "1" {
		t.Errorf("reload: kept=%s restarted=%s, want 1 and 1", e.Str("kept"), e.Str("restarted"))
	}
	upFor(mark, "b")
	for _, e := range d.Entries(mark) {
		if e.Msg() == "connected" && e.Str("tunnel") == "a" {
			t.Errorf("tunnel a reconnected on reload though its settings did not change")
		}
	}

	// A broken config is refused; both tunnels keep serving.
	mark = d.Mark()
	os.WriteFile(path, []byte("tunnels: [{name: a, bogus: 1}]\n"), 0o644)
	d.Signal(syscall.SIGHUP)
	e, _, _ = d.WaitMsg(mark, 10*time.Second, "reload refused: the new config has problems; the running config stays")
	if !strings.Contains(e.Str("err"), `unknown key "bogus"`) {
		t.Errorf("refusal does not say why: %q", e.Str("err"))
	}
	for _, p := range []int{p1, p2} {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), 5*time.Second)
		if err != nil {
			t.Fatalf("port %d after a refused reload: %v", p, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != "hello\n" {
			t.Errorf("port %d after a refused reload: %q", p, got)
		}
	}
}

// rtunnel runs with one P and an adaptive GC goal unless the operator's
// environment says otherwise, and its startup line reports what is in force.
func TestRuntimeSettingsDefaultAndOverride(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	cfg := w.config(t, [][2]string{w.sshForward()}, "")
	for _, c := range []struct {
		env         []string
		procs, gogc string
	}{
		{[]string{"GOMAXPROCS=", "GOGC="}, "1", "adaptive"},
		{[]string{"GOMAXPROCS=2", "GOGC=100"}, "2", "100"},
	} {
		d := daemontest.Start(t, []string{"up", "--config", cfg}, c.env...)
		e, _, _ := d.WaitMsg(0, 10*time.Second, "starting")
		if e.Str("gomaxprocs") != c.procs || e.Str("gogc") != c.gogc {
			t.Errorf("with %q: starting line says gomaxprocs=%s gogc=%s, want %s and %s",
				c.env, e.Str("gomaxprocs"), e.Str("gogc"), c.procs, c.gogc)
		}
		d.Signal(syscall.SIGTERM)
		if code, ok := d.Wait(10 * time.Second); !ok || code != 0 {
			t.Fatalf("with %q: exit %d (exited: %v), want a clean stop", c.env, code, ok)
		}
	}
}

// The GC goal rises while a transfer runs through the tunnel and is back at
// Go's default once it stops (cmd/rtunnel/gcgoal.go), as the runtime itself
// reports it on /metrics.
func TestGCGoalFollowsTraffic(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	srv := serveLocal(t, "", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	cfg := w.config(t, [][2]string{{"localhost:" + strconv.Itoa(w.tunnelPort), srv.Addr()}}, "")
	metricsAddr := withMetrics(t, cfg)
	d := daemontest.Start(t, []string{"up", "--config", cfg}, "GOGC=")
	waitForwardUp(t, d, 0, 20*time.Second)
	const gogc = "go_gc_gogc_percent"
	waitMetric(t, metricsAddr, gogc, 100, 5*time.Second)

	// hub -> remote: the direction whose packets x/crypto allocates.
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(w.tunnelPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(90 * time.Second))
	sent := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		var err error
		for i := 0; i < 2048 && err == nil; i++ { // 512 MiB at most
			_, err = c.Write(buf)
		}
		sent <- err
	}()
	highest := 0.0
	for deadline := time.Now().Add(60 * time.Second); highest <= 100 && time.Now().Before(deadline); {
		if v, ok := scrape(t, metricsAddr)[gogc]; ok && v > highest {
			highest = v
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.Close() // stop the transfer
	if err := <-sent; err != nil && highest <= 100 {
		t.Fatalf("transfer ended (%v) before the GC goal rose", err)
	}
	if highest <= 100 {
		t.Fatalf("%s stayed at %v during the transfer, want above 100", gogc, highest)
	}
	t.Logf("GOGC during the transfer: %v", highest)
	waitMetric(t, metricsAddr, gogc, 100, 5*time.Second)
}

// SIGUSR1, as with autossh: every tunnel drops its session, or stops
// waiting out its backoff, and connects again at once.
func TestSIGUSR1ReconnectsNow(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	cfg := w.config(t, [][2]string{w.sshForward()}, "")
	data, _ := os.ReadFile(cfg)
	slow := strings.Replace(string(data), "backoff: {initial: 200ms, max: 2s,", "backoff: {initial: 20s, max: 60s,", 1)
	if slow == string(data) {
		t.Fatal("the test's config has no backoff line to slow down")
	}
	os.WriteFile(cfg, []byte(slow), 0o644)
	d := w.up(t, cfg)
	waitForwardUp(t, d, 0, 20*time.Second)

	// A running session is closed and replaced.
	from := d.Mark()
	d.Signal(syscall.SIGUSR1)
	e, _, _ := d.WaitMsg(from, 5*time.Second, "session closed on request")
	if e.Str("reason") != "reconnect requested" {
		t.Errorf("closed with reason %q, want \"reconnect requested\"", e.Str("reason"))
	}
	waitForwardUp(t, d, from, 5*time.Second)
	w.echoLogin(t)

	// A tunnel waiting out a 20 s backoff tries again at once.
	line := guideLine("localhost:"+strconv.Itoa(w.tunnelPort), "255.255.255.255:9", w.tunnelKey.PublicLine)
	w.hub.SetAuthorizedKeys(t, []string{w.masterKey.PublicLine})
	from = d.Mark()
	d.Signal(syscall.SIGUSR1) // reconnects, and the hub refuses the key
	e, _, _ = d.WaitMsg(from, 10*time.Second, "tunnel down; will retry")
	if e.Str("result") != "auth" {
		t.Fatalf("retry after the key was removed: result %q (%s), want auth", e.Str("result"), e.Str("err"))
	}
	wait, err := time.ParseDuration(e.Str("retry_in"))
	if err != nil || wait < 15*time.Second {
		t.Fatalf("retry_in %q: want the 20 s backoff", e.Str("retry_in"))
	}
	w.hub.SetAuthorizedKeys(t, []string{line})
	from = d.Mark()
	kicked := time.Now()
	d.Signal(syscall.SIGUSR1)
	_, at := waitForwardUp(t, d, from, 5*time.Second)
	t.Logf("forward up %v after SIGUSR1, instead of the %v backoff", at.Sub(kicked).Round(time.Millisecond), wait)
	w.echoLogin(t)
}
