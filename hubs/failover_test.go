package hubs

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/rtunnel/rtunnel/reconnect"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	errDown  = errors.New("connection refused")
	errFatal = errors.New("host key changed")
)

// fakeHub is a hub whose state the test sets, in the bubble's fake time.
type fakeHub struct {
	name      string
	up        func(now time.Duration) bool // reachable, and a session holds while it is
	sessions  int
	upTimes   []time.Duration
	permanent bool
}

type world struct {
	start time.Time
	hubs  []*fakeHub
	log   []string // hub names in the order their sessions came up
	waits map[string][]time.Duration
}

func (w *world) now() time.Duration { return time.Since(w.start) }

func (w *world) failover(p reconnect.Policy) *Failover {
	f := &Failover{Policy: p, FailbackAfter: time.Minute, CheckEvery: 10 * time.Second,
		IsPermanent: func(err error) bool { return errors.Is(err, errFatal) },
		IsRefused:   func(err error) bool { return errors.Is(err, errDown) },
		OnUse:       func(hub string) { w.log = append(w.log, hub) },
		OnRetry: func(hub string, _ int, _ error, wait time.Duration) {
			w.waits[hub] = append(w.waits[hub], wait)
		},
	}
	for _, h := range w.hubs {
		f.Hubs = append(f.Hubs, Hub{Name: h.name,
			Session: func(ctx context.Context, up func()) error {
				h.sessions++
				if h.permanent {
					return errFatal
				}
				if !h.up(w.now()) {
					return errDown
				}
				up()
				h.upTimes = append(h.upTimes, w.now())
				for {
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(time.Second): // keepalive
						if !h.up(w.now()) {
							return errors.New("keepalive timeout")
						}
					}
				}
			},
			Reachable: func(context.Context) bool { return h.up(w.now()) },
		})
	}
	return f
}

func defaults() reconnect.Policy {
	return reconnect.Policy{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2, ResetAfter: time.Minute}
}

// run runs the failover for d of fake time.
func run(t *testing.T, hubs []*fakeHub, d time.Duration) (*world, error) {
	t.Helper()
	w := &world{hubs: hubs, waits: map[string][]time.Duration{}}
	var err error
	synctest.Test(t, func(t *testing.T) {
		w.start = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		err = w.failover(defaults()).Run(ctx)
	})
	return w, err
}

func always(time.Duration) bool { return true }
func never(time.Duration) bool  { return false }

func between(from, to time.Duration) func(time.Duration) bool {
	return func(now time.Duration) bool { return now < from || now >= to }
}

func TestFailoverHoldsTheFirstHub(t *testing.T) {
	a, b := &fakeHub{name: "a", up: always}, &fakeHub{name: "b", up: always}
	w, err := run(t, []*fakeHub{a, b}, 10*time.Minute)
	if err != nil || len(w.log) != 1 || w.log[0] != "a" || b.sessions != 0 {
		t.Fatalf("err %v, sessions up %v, b tried %d times: want one session on a, b never", err, w.log, b.sessions)
	}
}

// The first hub blackholed for 5 minutes: the session moves to the second
// at once, and back to the first a minute (FailbackAfter) after it answers
// again, not before.
func TestFailoverAndBack(t *testing.T) {
	a := &fakeHub{name: "a", up: between(time.Minute, 6*time.Minute)}
	b := &fakeHub{name: "b", up: always}
	w, err := run(t, []*fakeHub{a, b}, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "a"}; !equalStrings(w.log, want) {
		t.Fatalf("sessions up on %v, want %v", w.log, want)
	}
	if got := b.upTimes[0]; got > time.Minute+5*time.Second {
		t.Errorf("on b at %v, want within the keepalive of a's loss at 1m", got)
	}
	// a answers from 6m; checks every 10 s +-20 %; back after a minute of answers.
	if got := a.upTimes[1]; got < 7*time.Minute || got > 7*time.Minute+30*time.Second {
		t.Errorf("back on a at %v, want about 7m (a minute after it answers again)", got)
	}
}

// A preferred hub that answers only now and then never gets the session
// back: no flapping.
func TestFailoverIgnoresAFlappingHub(t *testing.T) {
	a := &fakeHub{name: "a", up: func(now time.Duration) bool { return now < 30*time.Second || now%(50*time.Second) < 25*time.Second }}
	b := &fakeHub{name: "b", up: always}
	w, err := run(t, []*fakeHub{a, b}, 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b"}; !equalStrings(w.log, want) {
		t.Fatalf("sessions up on %v, want %v (a never stays up for a minute)", w.log, want)
	}
}

// Both hubs down, then the second back: the session is up on it within
// its own schedule's wait; each hub's waits grow on their own.
func TestFailoverBothDownThenOneBack(t *testing.T) {
	a := &fakeHub{name: "a", up: never}
	b := &fakeHub{name: "b", up: func(now time.Duration) bool { return now >= 40*time.Second }}
	w, err := run(t, []*fakeHub{a, b}, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.log) != 1 || w.log[0] != "b" {
		t.Fatalf("sessions up on %v, want b", w.log)
	}
	// b's waits doubled from 0.5 s (refused): 0.5, 1, 2, 4, 8, 16 ...: it
	// is retried at about 31.5 s and 63.5 s (+-20 % each).
	if got := b.upTimes[0]; got > 80*time.Second {
		t.Errorf("up on b at %v, want within its schedule after 40s", got)
	}
	for _, h := range []string{"a", "b"} {
		ws := w.waits[h]
		for i := 1; i < len(ws) && i < 6; i++ {
			if ws[i] < ws[i-1] {
				t.Errorf("hub %s waits %v: want its own growing schedule", h, ws)
				break
			}
		}
	}
	if a.sessions > 12 {
		t.Errorf("a tried %d times in 3 minutes down, want its schedule (<= 12)", a.sessions)
	}
}

// A session that drops (sshd restart on the hub in use) is retried on the
// same hub first, after its wait.
func TestFailoverRetriesTheHubInUseFirst(t *testing.T) {
	a := &fakeHub{name: "a", up: between(time.Minute, time.Minute+500*time.Millisecond)}
	b := &fakeHub{name: "b", up: always}
	w, err := run(t, []*fakeHub{a, b}, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "a"}; !equalStrings(w.log, want) || b.sessions != 0 {
		t.Fatalf("sessions up on %v, b tried %d times: want a twice, b never", w.log, b.sessions)
	}
}

// A hub that fails permanently (its host key changed) is left; the others
// go on; when every hub failed so, Run returns the error.
func TestFailoverPermanentPerHub(t *testing.T) {
	a := &fakeHub{name: "a", permanent: true}
	b := &fakeHub{name: "b", up: always}
	w, err := run(t, []*fakeHub{a, b}, time.Minute)
	if err != nil || len(w.log) != 1 || w.log[0] != "b" || a.sessions != 1 {
		t.Fatalf("err %v, up on %v, a tried %d times: want b up, a tried once", err, w.log, a.sessions)
	}
	b.permanent = true
	b.up = never
	_, err = run(t, []*fakeHub{a, b}, time.Minute)
	var pe *reconnect.PermanentError
	if !errors.As(err, &pe) || !errors.Is(err, errFatal) {
		t.Fatalf("every hub permanent: err %v, want a PermanentError", err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
