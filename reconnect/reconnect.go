// Package reconnect runs a session function forever: after each end it waits
// (exponential backoff with jitter, a short fixed wait for errors that
// deserve a fast retry, the longest wait for errors that need time) and runs
// it again, until the context ends or an error is permanent.
//
// It imports only the standard library; it knows nothing of SSH, config
// files or metrics.
package reconnect

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy is the wait schedule. Every outage (from the first failure to a
// session that stays up for ResetAfter) grows its waits from a small first
// one to Max, so a hub that is down for long gets one attempt per Max from
// each client, a short outage (an sshd restart) is noticed within a second
// or two, and a fleet that lost its hub at once does not come back at once.
type Policy struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64 // 0.2 = each wait is randomised by +-20 %
	// ResetAfter: a session that stayed up this long ends the outage; the
	// next failure starts the schedule again from Initial.
	ResetAfter time.Duration
	// FastRetry is the wait after an error for which IsFast is true, for
	// FastRetryFor after the first such error in a row; then the normal
	// schedule applies.
	FastRetry    time.Duration
	FastRetryFor time.Duration
	// RefusedRetry replaces Initial as the schedule's first step after an
	// error for which IsRefused is true: the server's host answered but
	// nothing listens (sshd restarting), which usually ends within a
	// second. The wait still doubles, like any other: a flat fast retry
	// cost a down hub 4 SYNs a second per client (36 per client in a 10 s
	// hub reboot, issue 12); doubling from it costs 4 in the first 10 s,
	// what autossh costs. Never above Initial; 0 means DefaultRefusedRetry.
	RefusedRetry time.Duration
}

// DefaultRefusedRetry is RefusedRetry's default.
const DefaultRefusedRetry = 500 * time.Millisecond

func (p Policy) refusedRetry() time.Duration {
	d := p.RefusedRetry
	if d <= 0 {
		d = DefaultRefusedRetry
	}
	return min(d, p.Initial)
}

// step is the wait's base at the outage's n-th growing wait (0-based):
// first x Multiplier^n, at most Max.
func (p Policy) step(first time.Duration, n int) time.Duration {
	d := float64(first)
	for range n {
		d *= max(p.Multiplier, 1)
		if d >= float64(p.Max) {
			return p.Max
		}
	}
	return min(time.Duration(d), p.Max)
}

// jittered randomises d by +-jitter.
func jittered(d time.Duration, jitter float64) time.Duration {
	if jitter <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + jitter*(2*rand.Float64()-1)))
}

// A hub that says it is busy (past MaxStartups) is up and working through a
// storm; dropping a connection costs it an accept and a close, no fork. So
// its waits have their own schedule, from Initial to at most busyMax, not
// the outage's (after a 10 s reboot that is already at 16 s, and a fleet
// dropped once would wait 16 s and then 32 s on a hub with room again), and
// busySpread jitter: the clients it dropped arrived together, and with
// +-20 % they would arrive together again; half to one and a half times the
// step spreads them over the whole of it.
const (
	busyMax    = 8 * time.Second
	busySpread = 0.5
)

// Loop runs Session with the Policy's waits.
type Loop struct {
	Policy Policy
	// Session runs one session; it calls up() once the session is fully
	// established. It returns nil only when ctx ended.
	Session func(ctx context.Context, up func()) error
	// IsPermanent errors end the loop: retrying cannot help.
	IsPermanent func(error) bool
	// IsFast errors are retried at FastRetry for a while.
	IsFast func(error) bool
	// IsRefused errors (connection refused) start the schedule from
	// RefusedRetry instead of Initial.
	IsRefused func(error) bool
	// IsBusy errors (the hub closed the connection before it spoke:
	// MaxStartups) have their own steps, Initial doubling to busyMax, spread
	// by busySpread.
	IsBusy func(error) bool
	// IsSlow errors are retried after Max (with jitter), however young the
	// outage: a file being rewritten needs a moment, and a file that stays
	// broken needs an operator, not a tight loop.
	IsSlow func(error) bool
	// OnRetry is told about every scheduled retry (for logs and metrics).
	OnRetry func(attempt int, err error, wait time.Duration)

	kicks Kicks
}

// Kick ends the running session (its context is cancelled with ErrKick as
// the cause) or the current wait, and the next attempt starts at once, on a
// fresh schedule: what autossh does on SIGUSR1. A kick between the two
// ends the wait that follows. Safe from any goroutine, also before Run.
func (l *Loop) Kick() { l.kicks.Kick() }

// PermanentError is what Run returns when the session failed for good.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Run loops until ctx ends (returns nil) or the session fails permanently
// (returns *PermanentError).
func (l *Loop) Run(ctx context.Context) error {
	sched := &Schedule{Policy: l.Policy, IsFast: l.IsFast, IsRefused: l.IsRefused, IsSlow: l.IsSlow, IsBusy: l.IsBusy}
	fresh := sched.Reset
	for attempt := 1; ; attempt++ {
		var upAt time.Time
		kicked, err := l.session(ctx, func() { upAt = time.Now() })
		if ctx.Err() != nil {
			return nil
		}
		if kicked {
			fresh()
			attempt = 0
			continue
		}
		if err == nil {
			err = errors.New("session ended without an error")
		}
		if l.IsPermanent != nil && l.IsPermanent(err) {
			return &PermanentError{Err: err}
		}
		if !upAt.IsZero() && time.Since(upAt) >= l.Policy.ResetAfter {
			fresh()
			attempt = 1
		}
		wait := sched.Next(err)
		if l.OnRetry != nil {
			l.OnRetry(attempt, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-l.kicks.Pending():
			t.Stop()
			fresh()
			attempt = 0
		case <-t.C:
		}
	}
}

// Schedule is one server's waits, outage after outage: Loop keeps one, and
// a caller that chooses among servers keeps one per server.
type Schedule struct {
	Policy                            Policy
	IsFast, IsRefused, IsSlow, IsBusy func(error) bool // as in Loop
	fastSince                         time.Time
	grown                             int // growing waits so far in this outage
	busy                              int // busy waits in a row
}

// Reset starts a new outage, as if no failure had happened.
func (s *Schedule) Reset() { s.fastSince, s.grown, s.busy = time.Time{}, 0, 0 }

// Next is the wait after err: the longest for a slow error, FastRetry in
// its window, else the outage's next growing step.
func (s *Schedule) Next(err error) time.Duration {
	p := s.Policy
	if s.IsSlow != nil && s.IsSlow(err) {
		return jittered(p.Max, p.Jitter)
	}
	if s.IsFast != nil && s.IsFast(err) && p.FastRetry > 0 {
		if s.fastSince.IsZero() {
			s.fastSince = time.Now()
		}
		if time.Since(s.fastSince) < p.FastRetryFor {
			return p.FastRetry
		}
	} else {
		s.fastSince = time.Time{}
	}
	if s.IsBusy != nil && s.IsBusy(err) {
		d := min(p.step(p.Initial, s.busy), busyMax, p.Max)
		s.busy++
		return jittered(d, max(p.Jitter, busySpread))
	}
	s.busy = 0
	first := p.Initial
	if s.IsRefused != nil && s.IsRefused(err) {
		first = p.refusedRetry()
	}
	d := p.step(first, s.grown)
	s.grown++
	return jittered(d, p.Jitter)
}

// session runs one session, which a kick cancels with ErrKick; kicked says
// whether one did.
func (l *Loop) session(ctx context.Context, up func()) (kicked bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	l.kicks.Begin(cancel)
	err = l.Session(sctx, up)
	l.kicks.End()
	return errors.Is(context.Cause(sctx), ErrKick), err
}
