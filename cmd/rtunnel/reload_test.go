package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/health"
	"github.com/rtunnel/rtunnel/tunnel"
)

// tunnelsConfig is a config of n tunnels with the given keepalive interval
// and shutdown grace; the files are not read.
func tunnelsConfig(t *testing.T, n int, keepalive string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("shutdown_grace: 5s\ntunnels:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: t%d\n    server: u@hub:22\n    identity: /k\n    known_hosts: /kh\n", i)
		fmt.Fprintf(&b, "    keepalive: {interval: %s, count_max: 3}\n", keepalive)
		fmt.Fprintf(&b, "    forwards: [{remote: \"localhost:%d\", local: \"localhost:22\"}]\n", 2200+i)
	}
	cfg, err := config.Parse("/etc/rtunnel/rtunnel.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// syncBuffer is a log sink the tunnels' goroutines write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeSessions stands in for the SSH sessions: each comes up at once and,
// when stopped, holds on for the shutdown grace as a session with an open
// connection does. It records when each tunnel's sessions started.
type fakeSessions struct {
	mu     sync.Mutex
	starts map[string][]time.Time
	fail   map[string]error // a session that fails at once with this error
	health *health.Health   // told what package tunnel would tell it
}

func (f *fakeSessions) session(spec config.Tunnel) func(ctx context.Context, up func()) error {
	return func(ctx context.Context, up func()) error {
		f.mu.Lock()
		f.starts[spec.Name] = append(f.starts[spec.Name], time.Now())
		err := f.fail[spec.Name]
		f.mu.Unlock()
		if err != nil {
			return err
		}
		f.health.Connected(spec.Name)
		for _, fw := range tunnelConfig(&config.Config{}, spec, nil, nil).Forwards {
			f.health.ForwardUp(spec.Name, fw.String())
		}
		up()
		<-ctx.Done()
		time.Sleep(5 * time.Second) // an open connection, closed at the end of the grace
		return nil
	}
}

func (f *fakeSessions) started(name string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.starts[name]...)
}

func newTestSupervisor(t *testing.T, cfg *config.Config) (*supervisor, *fakeSessions, *syncBuffer) {
	logs := &syncBuffer{}
	h := health.New("test")
	sup := newSupervisor(slog.New(slog.NewJSONHandler(logs, nil)), h, nil, cfg)
	fake := &fakeSessions{starts: map[string][]time.Time{}, fail: map[string]error{}, health: h}
	sup.sessionFor = fake.session
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("supervisor log:\n%s", logs.String())
		}
	})
	return sup, fake, logs
}

// A reload that changes 8 tunnels, each with a connection open and a 5 s
// shutdown grace, stops them in parallel (the new sessions start 5 s after
// the SIGHUP, not 40 s), and the supervisor loop answers the watchdog
// within a millisecond throughout: before the fix it waited for each
// tunnel in turn and the heartbeat went stale for 40 s.
func TestReloadStopsInParallelAndKeepsAnsweringTheWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sup, fake, _ := newTestSupervisor(t, tunnelsConfig(t, 8, "5s"))
		next := tunnelsConfig(t, 8, "7s")
		ctx, cancel := context.WithCancel(context.Background())
		hup := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- sup.run(ctx, nil, hup, nil, func() (*config.Config, map[string]error, error) { return next, nil, nil })
		}()
		synctest.Wait()
		hup <- struct{}{}
		reloadAt := time.Now()
		for time.Since(reloadAt) < 7*time.Second {
			actx, stop := context.WithTimeout(ctx, time.Millisecond)
			if !sup.answers(actx) {
				t.Fatalf("the supervisor did not answer the watchdog %s into the reload", time.Since(reloadAt))
			}
			stop()
			time.Sleep(100 * time.Millisecond)
		}
		for i := range 8 {
			starts := fake.started(fmt.Sprintf("t%d", i))
			if len(starts) != 2 {
				t.Fatalf("t%d: %d sessions, want 2 (the reload restarts it)", i, len(starts))
			}
			if took := starts[1].Sub(reloadAt); took != 5*time.Second {
				t.Errorf("t%d restarted %s after the SIGHUP, want 5s (the grace, once: in parallel)", i, took)
			}
		}
		if r := sup.health.LastReload(); !r.OK || !r.At.Equal(reloadAt.Add(5*time.Second)) {
			t.Errorf("reload result %+v, want OK at the end of the grace", r)
		}
		cancel()
		stopAt := time.Now()
		for time.Since(stopAt) < 4*time.Second { // the stop takes the grace: still answering
			actx, stop := context.WithTimeout(context.Background(), time.Millisecond)
			if !sup.answers(actx) {
				t.Fatalf("the supervisor did not answer the watchdog %s into the stop", time.Since(stopAt))
			}
			stop()
			time.Sleep(500 * time.Millisecond)
		}
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		if took := time.Since(reloadAt); took != 12*time.Second {
			t.Errorf("stopping took until %s after the reload, want 12s (7s + one grace of 5s)", took)
		}
	})
}

// metric reads one sample from the health endpoint's text exposition.
func metric(t *testing.T, h *health.Health, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} // the Host of the request below
	h.Handler(addr).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:9/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return ""
}

// A refused reload (a bad file, or one where no tunnel could run) keeps the
// running tunnels and says so in the metrics and the reload result; a good
// one after it sets them back.
func TestReloadResultAfterRefusedAndGoodReloads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := tunnelsConfig(t, 2, "5s")
		sup, fake, logs := newTestSupervisor(t, cfg)
		sup.health.ReloadResult(nil) // as up does for the load at start
		startedAt := time.Now()
		var load loadFunc
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		hup := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- sup.run(ctx, nil, hup, nil, func() (*config.Config, map[string]error, error) { return load() })
		}()
		synctest.Wait()
		if got := metric(t, sup.health, "rtunnel_config_last_reload_successful"); got != "1" {
			t.Errorf("after start: last_reload_successful %s, want 1", got)
		}

		time.Sleep(time.Minute)
		load = func() (*config.Config, map[string]error, error) {
			return nil, nil, errors.New(`/etc/rtunnel/rtunnel.yaml:3: unknown key "bogus"`)
		}
		hup <- struct{}{}
		synctest.Wait()
		if got := metric(t, sup.health, "rtunnel_config_last_reload_successful"); got != "0" {
			t.Errorf("after a bad file: last_reload_successful %s, want 0", got)
		}
		r := sup.health.LastReload()
		if r.OK || !strings.Contains(r.Error, `unknown key "bogus"`) || !r.LastSuccess.Equal(startedAt) {
			t.Errorf("after a bad file: %+v", r)
		}
		if !strings.Contains(logs.String(), "reload refused") {
			t.Error("a refused reload was not logged")
		}

		next := tunnelsConfig(t, 2, "7s")
		load = func() (*config.Config, map[string]error, error) {
			return next, map[string]error{"t0": errors.New("identity /k: no such file"), "t1": errors.New("known_hosts /kh: no such file")}, nil
		}
		hup <- struct{}{}
		synctest.Wait()
		if r := sup.health.LastReload(); r.OK || !strings.Contains(r.Error, "no tunnel of the new config could run") {
			t.Errorf("after a file where no tunnel can run: %+v", r)
		}
		for _, name := range []string{"t0", "t1"} {
			if n := len(fake.started(name)); n != 1 {
				t.Errorf("%s: %d sessions after refused reloads, want the first one only", name, n)
			}
		}

		time.Sleep(time.Minute)
		goodAt := time.Now()
		load = func() (*config.Config, map[string]error, error) { return next, nil, nil }
		hup <- struct{}{}
		time.Sleep(6 * time.Second) // the grace of the changed tunnels
		if got := metric(t, sup.health, "rtunnel_config_last_reload_successful"); got != "1" {
			t.Errorf("after a good reload: last_reload_successful %s, want 1", got)
		}
		got, err := strconv.ParseFloat(metric(t, sup.health, "rtunnel_config_last_reload_success_timestamp_seconds"), 64)
		if want := goodAt.Add(5 * time.Second).Unix(); err != nil || int64(got) != want {
			t.Errorf("after a good reload: success timestamp %v (%v), want %d (once the changed tunnels stopped)", got, err, want)
		}
		cancel()
		<-done
	})
}

// One tunnel that cannot run with its files is recorded as stopped and the
// others run; when the last running tunnel stops for good too, run ends with
// exit status 78. A reload with the files fixed starts the stopped tunnel.
func TestTunnelWithFileProblemsStopsAloneUntilReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := tunnelsConfig(t, 2, "5s")
		sup, fake, logs := newTestSupervisor(t, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		hup := make(chan struct{})
		done := make(chan error, 1)
		problem := errors.New("/etc/rtunnel/rtunnel.yaml:2: tunnel t0: identity /k: permissions 0644 are too open")
		go func() {
			done <- sup.run(ctx, map[string]error{"t0": problem}, hup, nil, func() (*config.Config, map[string]error, error) {
				return tunnelsConfig(t, 2, "5s"), nil, nil
			})
		}()
		synctest.Wait()
		if n := len(fake.started("t0")); n != 0 {
			t.Errorf("t0 with a bad key ran %d sessions", n)
		}
		if n := len(fake.started("t1")); n != 1 {
			t.Errorf("t1 ran %d sessions, want 1", n)
		}
		snap := sup.health.Snapshot()
		if snap[0].Name != "t0" || snap[0].State != health.StateStopped || snap[0].LastError != problem.Error() {
			t.Errorf("t0 in /status: %+v", snap[0])
		}
		// /readyz is public: the state, not the error text (that is on the control socket).
		if ok, notReady := sup.health.Ready(); ok || len(notReady) != 1 || notReady[0] != "t0: stopped" {
			t.Errorf("/readyz: ready %v, %q", ok, notReady)
		}
		if !strings.Contains(logs.String(), `"level":"ERROR","msg":"tunnel not started: its files have problems`) {
			t.Errorf("t0's problem not logged at ERROR")
		}

		hup <- struct{}{} // files fixed
		synctest.Wait()
		if n := len(fake.started("t0")); n != 1 {
			t.Errorf("t0 after a reload with its files fixed ran %d sessions, want 1", n)
		}
		if n := len(fake.started("t1")); n != 1 {
			t.Errorf("t1, unchanged, ran %d sessions after the reload, want still 1", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestEveryTunnelStoppedExits78(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := tunnelsConfig(t, 2, "5s")
		sup, fake, _ := newTestSupervisor(t, cfg)
		fake.fail["t1"] = &tunnel.HostKeyError{Kind: tunnel.HostChanged, Hop: "u@hub:22", Host: "hub", Port: 22}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- sup.run(ctx, map[string]error{"t0": errors.New("bad key")}, nil, nil, nil)
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(time.Hour): // fake time: a loop that retries for ever
			cancel()
			<-done
			t.Fatal("run did not end with both tunnels stopped for good")
		}
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitConfig {
			t.Fatalf("run = %v, want exit status %d", err, exitConfig)
		}
	})
}
