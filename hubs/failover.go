package hubs

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rtunnel/rtunnel/reconnect"
)

// Hub is one server of the list.
type Hub struct {
	Name string // as configured, for logs and metrics
	// Session runs one session on this hub, as reconnect.Loop.Session.
	Session func(ctx context.Context, up func()) error
	// Reachable is a cheap check that the hub answers (a TCP connect): it
	// decides when a preferred hub is back. It must return within ctx.
	Reachable func(ctx context.Context) bool
}

// Failover holds a session on one hub at a time.
type Failover struct {
	Hubs   []Hub // in order of preference
	Policy reconnect.Policy
	// Classifications, as in reconnect.Loop.
	IsPermanent, IsFast, IsRefused, IsSlow, IsBusy func(error) bool
	// FailbackAfter: a preferred hub must answer every check for this long
	// before the session moves back to it; a hub that flaps never gets it.
	FailbackAfter time.Duration
	// CheckEvery is how often a preferred hub is checked while another one
	// is in use (+-20 % jitter).
	CheckEvery time.Duration
	// OnRetry is told about every scheduled retry of a hub.
	OnRetry func(hub string, attempt int, err error, wait time.Duration)
	// OnUse is told when a session on a hub comes up (the hub in use).
	OnUse func(hub string)
	// OnFailback is told when the session leaves hub from for preferred hub
	// to, which stayed reachable for FailbackAfter.
	OnFailback func(from, to string)
	// OnHubStopped is told when a hub failed permanently; the others go on.
	OnHubStopped func(hub string, err error)

	kicks reconnect.Kicks
}

// Kick ends the running session or the current wait, as
// reconnect.Loop.Kick does; every hub's schedule starts afresh, and the
// most preferred hub is tried first.
func (f *Failover) Kick() { f.kicks.Kick() }

// errFailback is the cause a session is cancelled with when a preferred hub
// is back.
var errFailback = errors.New("a preferred hub is back")

// Run holds a session on the most preferred hub that can be reached, until
// ctx ends (nil) or every hub failed permanently (*reconnect.PermanentError
// with the last hub's error).
func (f *Failover) Run(ctx context.Context) error {
	n := len(f.Hubs)
	scheds := make([]*reconnect.Schedule, n)
	for i := range scheds {
		scheds[i] = &reconnect.Schedule{Policy: f.Policy, IsFast: f.IsFast, IsRefused: f.IsRefused, IsSlow: f.IsSlow, IsBusy: f.IsBusy}
	}
	notBefore := make([]time.Time, n) // each hub's next attempt, by its own schedule
	stopped := make([]bool, n)
	attempts := make([]int, n)
	stay := -1 // a hub whose session was up gets its own retry before the next hub
	for {
		i, wait := pick(notBefore, stopped, stay)
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-f.kicks.Pending():
				t.Stop()
				for j := range scheds {
					scheds[j].Reset()
					notBefore[j], attempts[j] = time.Time{}, 0
				}
				stay = -1
			case <-t.C:
			}
			continue
		}
		stay = -1
		attempts[i]++
		upAt, to, err := f.session(ctx, i, stopped)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, errFailback):
			if f.OnFailback != nil {
				f.OnFailback(f.Hubs[i].Name, f.Hubs[to].Name)
			}
			scheds[to].Reset()
			notBefore[to], attempts[to] = time.Time{}, 0
			continue
		case errors.Is(err, reconnect.ErrKick):
			for j := range scheds {
				scheds[j].Reset()
				notBefore[j], attempts[j] = time.Time{}, 0
			}
			continue
		case err == nil:
			err = errors.New("session ended without an error")
		}
		if f.IsPermanent != nil && f.IsPermanent(err) {
			stopped[i] = true
			if f.OnHubStopped != nil {
				f.OnHubStopped(f.Hubs[i].Name, err)
			}
			if all(stopped) {
				return &reconnect.PermanentError{Err: err}
			}
			continue
		}
		if !upAt.IsZero() {
			stay = i
			if time.Since(upAt) >= f.Policy.ResetAfter {
				scheds[i].Reset()
				attempts[i] = 1
			}
		}
		w := scheds[i].Next(err)
		notBefore[i] = time.Now().Add(w)
		if f.OnRetry != nil {
			f.OnRetry(f.Hubs[i].Name, attempts[i], err, w)
		}
	}
}

// pick is the hub to try now: stay if it was just up (after its wait),
// else the most preferred hub whose wait is over. If none is due, wait is
// how long until the first one is.
func pick(notBefore []time.Time, stopped []bool, stay int) (int, time.Duration) {
	now := time.Now()
	if stay >= 0 {
		return stay, notBefore[stay].Sub(now)
	}
	first, soonest := -1, time.Duration(0)
	for i, nb := range notBefore {
		if stopped[i] {
			continue
		}
		w := nb.Sub(now)
		if w <= 0 {
			return i, 0
		}
		if first < 0 || w < soonest {
			first, soonest = i, w
		}
	}
	return first, soonest
}

func all(b []bool) bool {
	for _, v := range b {
		if !v {
			return false
		}
	}
	return true
}

// session runs one session on hub i. While a less preferred hub is in use,
// the preferred ones are checked; the session is cancelled with
// errFailback when one of them stayed reachable for FailbackAfter (to says
// which), and with reconnect.ErrKick on a kick.
func (f *Failover) session(ctx context.Context, i int, stopped []bool) (upAt time.Time, to int, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	f.kicks.Begin(cancel)
	to = -1
	if i > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if j := f.watchPreferred(sctx, i, stopped); j >= 0 {
				to = j
				cancel(errFailback)
			}
		}()
	}
	err = f.Hubs[i].Session(sctx, func() {
		upAt = time.Now()
		if f.OnUse != nil {
			f.OnUse(f.Hubs[i].Name)
		}
	})
	f.kicks.End() // before cancel(nil): a kick until then still counts
	cancel(nil)
	wg.Wait()
	if c := context.Cause(sctx); errors.Is(c, errFailback) || errors.Is(c, reconnect.ErrKick) {
		err = c
	}
	return upAt, to, err
}

// watchPreferred checks hubs 0..i-1 (those not stopped) every CheckEvery
// until one of them has answered every check for FailbackAfter; it returns
// that hub, or -1 when ctx ends.
func (f *Failover) watchPreferred(ctx context.Context, i int, stopped []bool) int {
	since := make([]time.Time, i) // first of an unbroken run of answers; zero: none
	for {
		t := time.NewTimer(time.Duration(float64(f.CheckEvery) * (0.8 + 0.4*rand.Float64())))
		select {
		case <-ctx.Done():
			t.Stop()
			return -1
		case <-t.C:
		}
		for j := range i {
			if stopped[j] {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, f.CheckEvery)
			ok := f.Hubs[j].Reachable(cctx)
			cancel()
			if ctx.Err() != nil {
				return -1
			}
			switch {
			case !ok:
				since[j] = time.Time{}
			case since[j].IsZero():
				since[j] = time.Now()
			case time.Since(since[j]) >= f.FailbackAfter:
				return j
			}
		}
	}
}
