package tunnel

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// eventLog records the session events that health turns into
// rtunnel_tunnel_up and rtunnel_forward_up, in order.
type eventLog struct {
	NopObserver
	mu     sync.Mutex
	events []string
}

func (e *eventLog) add(ev string) {
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

func (e *eventLog) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.events)
}

func (e *eventLog) ConnectAttempt(string)          { e.add("attempt") }
func (e *eventLog) ConnectResult(_, result string) { e.add("result:" + result) }
func (e *eventLog) Connected(string)               { e.add("connected") }
func (e *eventLog) ForwardUp(string, string)       { e.add("forward_up") }
func (e *eventLog) ForwardDown(string, string)     { e.add("forward_down") }
func (e *eventLog) ForwardRefused(string, string)  { e.add("forward_refused") }
func (e *eventLog) Disconnected(_ string, err error) {
	if err == nil {
		e.add("disconnected:stop")
		return
	}
	e.add("disconnected:" + Result(err))
}

// Every session that reported Connected reports Disconnected, however it
// ends; one that never connected reports neither. health keeps
// rtunnel_tunnel_up at 1 from the one to the other.
func TestSessionEventsForEveryEnd(t *testing.T) {
	cases := []struct {
		name string
		// run sets the server up, starts the session and ends it.
		run  func(t *testing.T, s *testServer, cfg Config)
		want []string
	}{
		{"dial refused", func(t *testing.T, s *testServer, cfg Config) {
			cfg.Server.Port = freePort(t)
			runOnce(t, cfg)
		}, []string{"attempt", "result:dial"}},
		{"auth refused", func(t *testing.T, s *testServer, cfg Config) {
			s.refuseAuth.Store(true)
			runOnce(t, cfg)
		}, []string{"attempt", "result:auth"}},
		{"stopped during the handshake", func(t *testing.T, s *testServer, cfg Config) {
			s.silent.Store(true)
			r := startSession(t, cfg)
			waitFor(t, "the TCP connect", func() bool { return s.accepted.Load() > 0 })
			r.cancel()
			r.wait(t, 5*time.Second)
		}, []string{"attempt"}},
		{"forward refused, exit_on_forward_failure", func(t *testing.T, s *testServer, cfg Config) {
			s.refuseForward.Store(true)
			cfg.ExitOnForwardFailure = true
			runOnce(t, cfg)
		}, []string{"attempt", "connected", "forward_refused", "result:forward_refused", "disconnected:forward_refused"}},
		{"stopped while a tcpip-forward reply is pending", func(t *testing.T, s *testServer, cfg Config) {
			s.holdForward.Store(true)
			r := startSession(t, cfg)
			select {
			case <-s.forwardAsked:
			case <-time.After(10 * time.Second):
				t.Fatal("no tcpip-forward reached the server")
			}
			r.cancel()
			if err := r.wait(t, 5*time.Second); err != nil {
				t.Errorf("a stopped session returned %v, want nil", err)
			}
		}, []string{"attempt", "connected", "disconnected:stop"}},
		{"stopped while up", func(t *testing.T, s *testServer, cfg Config) {
			r := startSession(t, cfg)
			r.waitUp(t)
			r.cancel()
			r.wait(t, 5*time.Second)
		}, []string{"attempt", "connected", "forward_up", "result:ok", "forward_down", "disconnected:stop"}},
		{"link dies", func(t *testing.T, s *testServer, cfg Config) {
			r := startSession(t, cfg)
			r.waitUp(t)
			s.next(t).raw.Pause()
			r.wait(t, 5*time.Second)
		}, []string{"attempt", "connected", "forward_up", "result:ok", "forward_down", "disconnected:timeout"}},
		{"server closes", func(t *testing.T, s *testServer, cfg Config) {
			r := startSession(t, cfg)
			r.waitUp(t)
			s.next(t).Close()
			r.wait(t, 5*time.Second)
		}, []string{"attempt", "connected", "forward_up", "result:ok", "forward_down", "disconnected:closed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestServer(t)
			ev := &eventLog{}
			cfg := baseConfig(s, newClientFiles(t, s), &logs{}, "127.0.0.1:22")
			cfg.Observer = ev
			c.run(t, s, cfg)
			if got := ev.list(); !slices.Equal(got, c.want) {
				t.Errorf("events\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

// waitFor polls cond (bounded) for a state no event announces.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
