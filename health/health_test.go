package health

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	fwSSH = "localhost:2220->localhost:22"
	fwWeb = "localhost:8080->localhost:80"
)

// clock is the fixed time tests run at.
var clock = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestHealth(t *testing.T) (*Health, *httptest.Server) {
	t.Helper()
	h := New("v1.2.3")
	h.now = func() time.Time { return clock }
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = h.Handler(srv.Listener.Addr())
	srv.Start()
	t.Cleanup(srv.Close)
	return h, srv
}

// sample is one line of the Prometheus text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

func (s sample) String() string {
	keys := make([]string, 0, len(s.labels))
	for k := range s.labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(s.name + "{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", k, s.labels[k])
	}
	fmt.Fprintf(&b, "} %g", s.value)
	return b.String()
}

// scrape GETs /metrics and parses the text format.
func scrape(t *testing.T, srv *httptest.Server) []sample {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: status %d", resp.StatusCode)
	}
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, errors.New("no value")
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for line[0] != '}' {
			eq := strings.Index(line, `="`)
			if eq < 0 {
				return s, errors.New("bad label")
			}
			key := line[:eq]
			line = line[eq+2:]
			var val strings.Builder
			for {
				if line == "" {
					return s, errors.New("unterminated label value")
				}
				c := line[0]
				line = line[1:]
				if c == '"' {
					break
				}
				if c == '\\' {
					switch line[0] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(line[0])
					}
					line = line[1:]
					continue
				}
				val.WriteByte(c)
			}
			s.labels[key] = val.String()
			line = strings.TrimPrefix(line, ",")
		}
		line = line[1:]
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, errors.New("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	s.value = v
	return s, err
}

// value returns the sample with exactly these labels, failing if absent.
func value(t *testing.T, samples []sample, name string, kv ...string) float64 {
	t.Helper()
	v, ok := lookup(samples, name, kv...)
	if !ok {
		t.Fatalf("no sample %s%v", name, kv)
	}
	return v
}

func lookup(samples []sample, name string, kv ...string) (float64, bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	for _, s := range samples {
		if s.name != name || len(s.labels) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
				break
			}
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

func assertValue(t *testing.T, samples []sample, want float64, name string, kv ...string) {
	t.Helper()
	if got := value(t, samples, name, kv...); got != want {
		t.Errorf("%s%v = %g, want %g", name, kv, got, want)
	}
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestBuildInfoAndRuntimeCollectors(t *testing.T) {
	_, srv := newTestHealth(t)
	s := scrape(t, srv)
	assertValue(t, s, 1, "rtunnel_build_info", "version", "v1.2.3", "goversion", runtime.Version())
	if _, ok := lookup(s, "go_goroutines"); !ok {
		t.Error("go collector missing: no go_goroutines")
	}
	if _, ok := lookup(s, "process_start_time_seconds"); !ok {
		t.Error("process collector missing: no process_start_time_seconds")
	}
}

func TestDeclaredSeriesExistAtZero(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH, fwWeb, fwSSH})
	s := scrape(t, srv)
	assertValue(t, s, 0, "rtunnel_tunnel_up", "tunnel", "hub")
	assertValue(t, s, 0, "rtunnel_connected_since_seconds", "tunnel", "hub")
	assertValue(t, s, 0, "rtunnel_reconnects_total", "tunnel", "hub")
	assertValue(t, s, 0, "rtunnel_keepalive_missed_total", "tunnel", "hub")
	assertValue(t, s, 0, "rtunnel_keepalive_rtt_seconds_count", "tunnel", "hub")
	for _, r := range []string{"ok", "dial", "handshake", "hostkey", "auth", "forward_refused", "timeout"} {
		assertValue(t, s, 0, "rtunnel_connect_attempts_total", "tunnel", "hub", "result", r)
	}
	for _, fw := range []string{fwSSH, fwWeb} {
		assertValue(t, s, 0, "rtunnel_forward_up", "tunnel", "hub", "forward", fw)
		assertValue(t, s, 0, "rtunnel_forward_refused_total", "tunnel", "hub", "forward", fw)
		assertValue(t, s, 0, "rtunnel_connections_total", "tunnel", "hub", "forward", fw)
		assertValue(t, s, 0, "rtunnel_connections_active", "tunnel", "hub", "forward", fw)
		assertValue(t, s, 0, "rtunnel_bytes_total", "tunnel", "hub", "forward", fw, "direction", "in")
		assertValue(t, s, 0, "rtunnel_bytes_total", "tunnel", "hub", "forward", fw, "direction", "out")
		for _, r := range []string{"max_connections", "local_dial", "target_refused", "unknown_forward"} {
			assertValue(t, s, 0, "rtunnel_connections_rejected_total", "tunnel", "hub", "forward", fw, "reason", r)
		}
	}
	snap := h.Snapshot()
	if len(snap) != 1 || len(snap[0].Forwards) != 2 {
		t.Fatalf("duplicate forward not folded: %+v", snap)
	}
}

func TestTunnelUpDownAndForwards(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH, fwWeb})

	assertValue(t, scrape(t, srv), 0, "rtunnel_tunnel_up", "tunnel", "hub")

	h.ConnectAttempt("hub")
	h.ConnectResult("hub", "ok")
	h.Connected("hub")
	h.ForwardUp("hub", fwSSH)
	h.ForwardUp("hub", fwWeb)
	s := scrape(t, srv)
	assertValue(t, s, 1, "rtunnel_tunnel_up", "tunnel", "hub")
	assertValue(t, s, float64(clock.Unix()), "rtunnel_connected_since_seconds", "tunnel", "hub")
	assertValue(t, s, 1, "rtunnel_forward_up", "tunnel", "hub", "forward", fwSSH)
	assertValue(t, s, 1, "rtunnel_forward_up", "tunnel", "hub", "forward", fwWeb)
	assertValue(t, s, 1, "rtunnel_connect_attempts_total", "tunnel", "hub", "result", "ok")

	h.ForwardDown("hub", fwWeb)
	assertValue(t, scrape(t, srv), 0, "rtunnel_forward_up", "tunnel", "hub", "forward", fwWeb)

	h.ForwardUp("hub", fwWeb)
	h.Disconnected("hub", errors.New("ssh: keepalive timeout"))
	s = scrape(t, srv)
	assertValue(t, s, 0, "rtunnel_tunnel_up", "tunnel", "hub")
	assertValue(t, s, 0, "rtunnel_connected_since_seconds", "tunnel", "hub")
	assertValue(t, s, 0, "rtunnel_forward_up", "tunnel", "hub", "forward", fwSSH)
	assertValue(t, s, 0, "rtunnel_forward_up", "tunnel", "hub", "forward", fwWeb)

	st := h.Snapshot()[0]
	if st.State != StateRetrying || st.LastError != "ssh: keepalive timeout" || !st.Since.Equal(clock) {
		t.Errorf("after Disconnected: %+v", st)
	}
	for _, f := range st.Forwards {
		if f.Up {
			t.Errorf("forward %s still up after Disconnected", f.Name)
		}
	}
}

// A new connect attempt means the previous session is over, even if its
// end was never reported: the up gauge must not stay at 1 through it.
func TestConnectAttemptClearsUp(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH})
	h.ConnectAttempt("hub")
	h.Connected("hub")
	h.ForwardUp("hub", fwSSH)
	assertValue(t, scrape(t, srv), 1, "rtunnel_tunnel_up", "tunnel", "hub")

	h.ConnectAttempt("hub")
	s := scrape(t, srv)
	assertValue(t, s, 0, "rtunnel_tunnel_up", "tunnel", "hub")
	assertValue(t, s, 0, "rtunnel_connected_since_seconds", "tunnel", "hub")
	assertValue(t, s, 0, "rtunnel_forward_up", "tunnel", "hub", "forward", fwSSH)
}

func TestConnectAttemptsCountByResult(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH})
	for range 3 {
		h.ConnectAttempt("hub")
		h.ConnectResult("hub", "auth")
	}
	h.ConnectResult("hub", "dial")
	h.ConnectResult("hub", "dial tcp 10.9.8.7:22: i/o timeout") // misuse: must not become a label
	s := scrape(t, srv)
	assertValue(t, s, 3, "rtunnel_connect_attempts_total", "tunnel", "hub", "result", "auth")
	assertValue(t, s, 1, "rtunnel_connect_attempts_total", "tunnel", "hub", "result", "dial")
	assertValue(t, s, 1, "rtunnel_connect_attempts_total", "tunnel", "hub", "result", "other")
	assertValue(t, s, 0, "rtunnel_connect_attempts_total", "tunnel", "hub", "result", "ok")
}

func TestBytesAddUpConcurrently(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH, fwWeb})
	const workers, chunks = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range chunks {
				h.Bytes("hub", fwSSH, "in", 1000)
				h.Bytes("hub", fwSSH, "out", w+i%7)
				h.Bytes("hub", fwWeb, "in", 1)
			}
		})
	}
	wg.Wait()
	h.Bytes("hub", fwWeb, "out", 0)
	h.Bytes("hub", fwWeb, "sideways", 5)

	var wantOut int
	for w := range workers {
		for i := range chunks {
			wantOut += w + i%7
		}
	}
	s := scrape(t, srv)
	assertValue(t, s, workers*chunks*1000, "rtunnel_bytes_total", "tunnel", "hub", "forward", fwSSH, "direction", "in")
	assertValue(t, s, float64(wantOut), "rtunnel_bytes_total", "tunnel", "hub", "forward", fwSSH, "direction", "out")
	assertValue(t, s, workers*chunks, "rtunnel_bytes_total", "tunnel", "hub", "forward", fwWeb, "direction", "in")
	assertValue(t, s, 0, "rtunnel_bytes_total", "tunnel", "hub", "forward", fwWeb, "direction", "out")
	if _, ok := lookup(s, "rtunnel_bytes_total", "tunnel", "hub", "forward", fwWeb, "direction", "sideways"); ok {
		t.Error("unknown direction became a label value")
	}

	fs := h.Snapshot()[0].Forwards
	if fs[0].BytesIn != workers*chunks*1000 || fs[0].BytesOut != int64(wantOut) || fs[1].BytesIn != workers*chunks || fs[1].BytesOut != 0 {
		t.Errorf("snapshot bytes: %+v", fs)
	}
}

func TestBytesDoesNotAllocate(t *testing.T) {
	h := New("test")
	h.AddTunnel("hub", []string{fwSSH})
	if n := testing.AllocsPerRun(1000, func() { h.Bytes("hub", fwSSH, "in", 4096) }); n != 0 {
		t.Errorf("Bytes allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		h.ConnOpened("hub", fwSSH)
		h.ConnClosed("hub", fwSSH)
	}); n != 0 {
		t.Errorf("ConnOpened+ConnClosed allocate %v times per call", n)
	}
}

func TestConnectionsAndRejections(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH})
	for range 3 {
		h.ConnOpened("hub", fwSSH)
	}
	h.ConnClosed("hub", fwSSH)
	h.ConnRejected("hub", fwSSH, "max_connections")
	h.ConnRejected("hub", fwSSH, "max_connections")
	h.ConnRejected("hub", fwSSH, "local_dial")
	h.ConnRejected("hub", fwSSH, "bogus")
	h.ConnRejected("hub", "203.0.113.5:4444", "unknown_forward")
	h.ForwardRefused("hub", fwSSH)

	s := scrape(t, srv)
	assertValue(t, s, 3, "rtunnel_connections_total", "tunnel", "hub", "forward", fwSSH)
	assertValue(t, s, 2, "rtunnel_connections_active", "tunnel", "hub", "forward", fwSSH)
	assertValue(t, s, 2, "rtunnel_connections_rejected_total", "tunnel", "hub", "forward", fwSSH, "reason", "max_connections")
	assertValue(t, s, 1, "rtunnel_connections_rejected_total", "tunnel", "hub", "forward", fwSSH, "reason", "local_dial")
	assertValue(t, s, 1, "rtunnel_connections_rejected_total", "tunnel", "hub", "forward", fwSSH, "reason", "other")
	assertValue(t, s, 1, "rtunnel_connections_rejected_total", "tunnel", "hub", "forward", "unknown", "reason", "unknown_forward")
	assertValue(t, s, 1, "rtunnel_forward_refused_total", "tunnel", "hub", "forward", fwSSH)

	f := h.Snapshot()[0].Forwards[0]
	if f.Active != 2 || f.Refused != 1 {
		t.Errorf("snapshot forward: %+v", f)
	}
}

func TestKeepalive(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", nil)
	h.KeepaliveRTT("hub", 3*time.Millisecond)
	h.KeepaliveRTT("hub", 200*time.Millisecond)
	h.KeepaliveMissed("hub")
	s := scrape(t, srv)
	assertValue(t, s, 2, "rtunnel_keepalive_rtt_seconds_count", "tunnel", "hub")
	assertValue(t, s, 1, "rtunnel_keepalive_rtt_seconds_bucket", "tunnel", "hub", "le", "0.005")
	assertValue(t, s, 2, "rtunnel_keepalive_rtt_seconds_bucket", "tunnel", "hub", "le", "0.25")
	if got := value(t, s, "rtunnel_keepalive_rtt_seconds_sum", "tunnel", "hub"); got < 0.2029 || got > 0.2031 {
		t.Errorf("rtt sum = %g, want 0.203", got)
	}
	assertValue(t, s, 1, "rtunnel_keepalive_missed_total", "tunnel", "hub")
}

func TestRetryingAndStopped(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH})
	h.AddTunnel("edge", []string{fwWeb})
	h.Connected("edge")
	h.ForwardUp("edge", fwWeb)

	dialErr := errors.New("dial tcp 127.0.0.1:2222: connect: connection refused")
	h.ConnectAttempt("hub")
	h.ConnectResult("hub", "dial")
	h.Retrying("hub", 1, 4*time.Second, dialErr)
	h.Retrying("hub", 2, 4*time.Second, dialErr)

	s := scrape(t, srv)
	assertValue(t, s, 2, "rtunnel_reconnects_total", "tunnel", "hub")
	assertValue(t, s, 4, "rtunnel_backoff_seconds", "tunnel", "hub")
	assertValue(t, s, float64(clock.Add(4*time.Second).Unix()), "rtunnel_next_retry_timestamp_seconds", "tunnel", "hub")

	st := h.Snapshot()[0]
	if st.Name != "hub" || st.State != StateRetrying || st.LastError != dialErr.Error() ||
		!st.NextRetry.Equal(clock.Add(4*time.Second)) || st.Attempt != 2 {
		t.Errorf("retrying snapshot: %+v", st)
	}
	want := "1/2 tunnels up; hub: down (dial tcp 127.0.0.1:2222: connect: connection refused), retry at 12:00:04"
	if got := h.StatusLine(); got != want {
		t.Errorf("StatusLine = %q\nwant          %q", got, want)
	}

	h.ConnectAttempt("hub")
	assertValue(t, scrape(t, srv), 0, "rtunnel_next_retry_timestamp_seconds", "tunnel", "hub")
	if st := h.Snapshot()[0]; st.State != StateConnecting || !st.NextRetry.IsZero() {
		t.Errorf("connecting snapshot: %+v", st)
	}

	assertValue(t, scrape(t, srv), 0, "rtunnel_tunnel_stopped", "tunnel", "hub")
	h.Stopped("hub", errors.New(`knownhosts: key mismatch`))
	assertValue(t, scrape(t, srv), 1, "rtunnel_tunnel_stopped", "tunnel", "hub")
	st = h.Snapshot()[0]
	if st.State != StateStopped || st.LastError != "knownhosts: key mismatch" || !st.NextRetry.IsZero() {
		t.Errorf("stopped snapshot: %+v", st)
	}
	want = "1/2 tunnels up; hub: stopped (knownhosts: key mismatch)"
	if got := h.StatusLine(); got != want {
		t.Errorf("StatusLine = %q, want %q", got, want)
	}
}

func TestStatusLineAllUp(t *testing.T) {
	h, _ := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH})
	h.AddTunnel("edge", nil)
	if got, want := h.StatusLine(), "0/2 tunnels up; hub: connecting; edge: connecting"; got != want {
		t.Errorf("StatusLine = %q, want %q", got, want)
	}
	h.Connected("hub")
	h.Connected("edge")
	if got, want := h.StatusLine(), "2/2 tunnels up; hub: forward "+fwSSH+" down"; got != want {
		t.Errorf("StatusLine = %q, want %q", got, want)
	}
	h.ForwardUp("hub", fwSSH)
	if got, want := h.StatusLine(), "2/2 tunnels up"; got != want {
		t.Errorf("StatusLine = %q, want %q", got, want)
	}
}

func TestReadyz(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH, fwWeb})

	code, body := get(t, srv, "/readyz")
	if code != http.StatusServiceUnavailable || body != "hub: connecting\n" {
		t.Errorf("before connect: %d %q", code, body)
	}

	h.Connected("hub")
	h.ForwardUp("hub", fwSSH)
	code, body = get(t, srv, "/readyz")
	if code != http.StatusServiceUnavailable || body != "hub: forward "+fwWeb+" down\n" {
		t.Errorf("one forward down: %d %q", code, body)
	}
	if ok, notReady := h.Ready(); ok || len(notReady) != 1 {
		t.Errorf("Ready() = %v, %q", ok, notReady)
	}

	h.ForwardUp("hub", fwWeb)
	code, body = get(t, srv, "/readyz")
	if code != http.StatusOK || body != "ready\n" {
		t.Errorf("all up: %d %q", code, body)
	}

	h.Disconnected("hub", errors.New("EOF\nsecond line"))
	code, body = get(t, srv, "/readyz")
	if code != http.StatusServiceUnavailable || body != "hub: retrying\n" { // no error text: /readyz is public
		t.Errorf("after disconnect: %d %q", code, body)
	}
}

func TestHealthzStatusAndMethods(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH})
	h.Connected("hub")
	h.ForwardUp("hub", fwSSH)
	h.Bytes("hub", fwSSH, "out", 42)

	if code, body := get(t, srv, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}

	code, body := get(t, srv, "/status")
	if code != http.StatusOK {
		t.Fatalf("/status: %d", code)
	}
	var got Report
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	want := Report{Tunnels: []TunnelStatus{{
		Name: "hub", State: StateUp, Since: clock,
		Forwards: []ForwardStatus{{Name: fwSSH, Up: true, BytesOut: 42}},
	}}}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("/status = %+v\nwant      %+v", got, want)
	}
	if strings.Contains(body, "next_retry") {
		t.Errorf("/status shows a zero next_retry:\n%s", body)
	}

	resp, err := srv.Client().Post(srv.URL+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", resp.StatusCode)
	}
	if code, _ := get(t, srv, "/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d", code)
	}
}

// TestLabelsBounded drives every observer method with addresses in errors
// and undeclared names, then checks no label carries them.
func TestLabelsBounded(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH})
	peerErr := errors.New("read tcp 192.0.2.7:40000->198.51.100.9:22: connection reset by peer")
	h.ConnectAttempt("hub")
	h.ConnectResult("hub", "handshake")
	h.Connected("hub")
	h.ForwardUp("hub", fwSSH)
	h.ForwardRefused("hub", fwSSH)
	h.KeepaliveRTT("hub", time.Millisecond)
	h.KeepaliveMissed("hub")
	h.ConnOpened("hub", fwSSH)
	h.Bytes("hub", fwSSH, "in", 10)
	h.ConnClosed("hub", fwSSH)
	h.ConnRejected("hub", "198.51.100.9:5555", "unknown_forward")
	h.ConnOpened("hub", "192.0.2.7:40000")
	h.Bytes("hub", "192.0.2.7:40000", "in", 10)
	h.ForwardUp("192.0.2.7", fwSSH)
	h.Disconnected("hub", peerErr)
	h.Retrying("hub", 1, time.Second, peerErr)
	h.Stopped("hub", peerErr)

	allowed := []string{"tunnel", "forward", "result", "reason", "direction", "le", "version", "goversion"}
	n := 0
	for _, s := range scrape(t, srv) {
		if !strings.HasPrefix(s.name, "rtunnel_") {
			continue
		}
		n++
		for k, v := range s.labels {
			if !slices.Contains(allowed, k) {
				t.Errorf("%v: label %q not allowed", s, k)
			}
			if strings.Contains(v, "192.0.2.") || strings.Contains(v, "198.51.100.") {
				t.Errorf("%v: label %s carries a peer address", s, k)
			}
		}
	}
	if n == 0 {
		t.Fatal("no rtunnel_ samples")
	}
}

func TestUndeclaredAndRemovedTunnels(t *testing.T) {
	h, srv := newTestHealth(t)
	h.Connected("ghost")
	h.Bytes("ghost", fwSSH, "in", 1)
	h.AddTunnel("hub", []string{fwSSH})
	h.AddTunnel("edge", []string{fwWeb})
	h.Connected("hub")
	h.Bytes("hub", fwSSH, "in", 7)

	h.RemoveTunnel("hub")
	h.RemoveTunnel("never-added")
	// A session torn down by the reload keeps reporting for a moment.
	h.Disconnected("hub", errors.New("closed"))
	h.ForwardDown("hub", fwSSH)
	h.Bytes("hub", fwSSH, "in", 1)

	for _, s := range scrape(t, srv) {
		if tn := s.labels["tunnel"]; tn == "hub" || tn == "ghost" {
			t.Errorf("series left for %s: %v", tn, s)
		}
	}
	snap := h.Snapshot()
	if len(snap) != 1 || snap[0].Name != "edge" {
		t.Errorf("snapshot after remove: %+v", snap)
	}

	// Declaring it again starts from zero.
	h.AddTunnel("hub", []string{fwSSH})
	s := scrape(t, srv)
	assertValue(t, s, 0, "rtunnel_tunnel_up", "tunnel", "hub")
	assertValue(t, s, 0, "rtunnel_bytes_total", "tunnel", "hub", "forward", fwSSH, "direction", "in")
}

func TestRedeclareTunnelReconcilesForwards(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH, fwWeb})
	h.Connected("hub")
	h.ForwardUp("hub", fwSSH)
	h.Bytes("hub", fwSSH, "in", 5)
	h.Bytes("hub", fwWeb, "in", 5)

	const fwNew = "localhost:9090->localhost:90"
	h.AddTunnel("hub", []string{fwNew, fwSSH})
	h.Bytes("hub", fwWeb, "in", 5) // dropped forward: ignored

	s := scrape(t, srv)
	assertValue(t, s, 1, "rtunnel_tunnel_up", "tunnel", "hub")
	assertValue(t, s, 5, "rtunnel_bytes_total", "tunnel", "hub", "forward", fwSSH, "direction", "in")
	assertValue(t, s, 1, "rtunnel_forward_up", "tunnel", "hub", "forward", fwSSH)
	assertValue(t, s, 0, "rtunnel_forward_up", "tunnel", "hub", "forward", fwNew)
	for _, x := range s {
		if x.labels["forward"] == fwWeb {
			t.Errorf("series left for removed forward: %v", x)
		}
	}
	var names []string
	for _, f := range h.Snapshot()[0].Forwards {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{fwNew, fwSSH}) {
		t.Errorf("forwards after redeclare: %q", names)
	}
}

// TestImports keeps the dependency direction: health is imported by cmd and
// imports no rtunnel package.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"github.com/coreos/go-systemd/v22/daemon"}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if !strings.Contains(first, ".") {
				continue // standard library
			}
			if !slices.ContainsFunc(allowed, func(p string) bool { return strings.HasPrefix(path, p) }) {
				t.Errorf("%s imports %s; health may import only the standard library and go-systemd", name, path)
			}
		}
	}
	if _, err := os.Stat("metrics.go"); err != nil {
		t.Fatalf("test not run from the package directory: %v", err)
	}
}
