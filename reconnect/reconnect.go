// Package reconnect runs a session function forever: after each end it waits
// (exponential backoff with jitter, a short fixed wait for errors that
// deserve a fast retry, the longest wait for errors that need time) and runs
// it again, until the context ends or an error is permanent.
//
// It imports only the standard library and github.com/cenkalti/backoff/v4;
// it knows nothing of SSH, config files or metrics.
package reconnect

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy is the wait schedule.
type Policy struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64 // 0.2 = each wait is randomised by +-20 %
	// ResetAfter: a session that stayed up this long starts the schedule
	// again from Initial.
	ResetAfter time.Duration
	// FastRetry is the wait after an error for which IsFast is true, for
	// FastRetryFor after the first such error in a row; then the normal
	// schedule applies.
	FastRetry    time.Duration
	FastRetryFor time.Duration
	// QuickFor: while an outage is younger than this, every wait is
	// Initial (with jitter) instead of growing. sshd restarts and short
	// link drops end within seconds, and a doubling wait would add up to as
	// much again to them (autossh-like schedules take 7 s to notice a hub
	// that was down for 3 s). After QuickFor the wait grows from Initial to
	// Max, so a server down for hours sees about one attempt per Max. An
	// outage lasts until a session stays up for ResetAfter. 0 means
	// DefaultQuickFor; a negative value turns the quick phase off.
	QuickFor time.Duration
	// RefusedRetry is the quick phase's wait after an error for which
	// IsRefused is true: the server's host answered but nothing listens
	// (sshd restarting). A refused connect costs the server one SYN and one
	// RST, so trying every RefusedRetry (default 250 ms) for QuickFor finds
	// a restarted sshd within a fraction of a second. Never above Initial.
	RefusedRetry time.Duration
}

// DefaultQuickFor is Policy.QuickFor when it is zero.
const DefaultQuickFor = 30 * time.Second

func (p Policy) quickFor() time.Duration {
	if p.QuickFor == 0 {
		return DefaultQuickFor
	}
	return p.QuickFor
}

// jittered randomises d by +-jitter.
func jittered(d time.Duration, jitter float64) time.Duration {
	if jitter <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + jitter*(2*rand.Float64()-1)))
}

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
	// IsRefused errors (connection refused) are retried at RefusedRetry
	// during the quick phase.
	IsRefused func(error) bool
	// IsSlow errors are retried after Max (with jitter), quick phase or
	// not: a file being rewritten needs a moment, and a file that stays
	// broken needs an operator, not a tight loop.
	IsSlow func(error) bool
	// OnRetry is told about every scheduled retry (for logs and metrics).
	OnRetry func(attempt int, err error, wait time.Duration)
	// Kick, when it delivers, ends the running session (its context is
	// cancelled with ErrKick as the cause) or the current wait, and the next
	// attempt starts at once, on a fresh schedule: what autossh does on
	// SIGUSR1. Nil: never.
	Kick <-chan struct{}
}

// ErrKick is the cause a kicked session's context is cancelled with.
var ErrKick = errors.New("reconnect requested")

// PermanentError is what Run returns when the session failed for good.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// DefaultRefusedRetry is RefusedRetry's default.
const DefaultRefusedRetry = 250 * time.Millisecond

func (p Policy) refusedRetry() time.Duration {
	if p.RefusedRetry > 0 {
		return p.RefusedRetry
	}
	return DefaultRefusedRetry
}

// Run loops until ctx ends (returns nil) or the session fails permanently
// (returns *PermanentError).
func (l *Loop) Run(ctx context.Context) error {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(l.Policy.Initial),
		backoff.WithMaxInterval(l.Policy.Max),
		backoff.WithMultiplier(l.Policy.Multiplier),
		backoff.WithRandomizationFactor(l.Policy.Jitter),
		backoff.WithMaxElapsedTime(0), // never give up
	)
	var fastSince time.Time
	var outageSince time.Time // first failure since the last healthy session
	// fresh starts a new schedule, as if no failure had happened.
	fresh := func() {
		b.Reset()
		fastSince, outageSince = time.Time{}, time.Time{}
	}
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
		if outageSince.IsZero() {
			outageSince = time.Now()
		}
		var wait time.Duration
		if l.IsSlow != nil && l.IsSlow(err) {
			wait = jittered(l.Policy.Max, l.Policy.Jitter)
		}
		if l.IsFast != nil && l.IsFast(err) && l.Policy.FastRetry > 0 {
			if fastSince.IsZero() {
				fastSince = time.Now()
			}
			if time.Since(fastSince) < l.Policy.FastRetryFor {
				wait = l.Policy.FastRetry
			}
		} else {
			fastSince = time.Time{}
		}
		if wait == 0 {
			if q := l.Policy.quickFor(); q > 0 && time.Since(outageSince) < q {
				base := l.Policy.Initial
				if l.IsRefused != nil && l.IsRefused(err) {
					base = min(base, l.Policy.refusedRetry())
				}
				wait = jittered(base, l.Policy.Jitter)
			} else {
				wait = b.NextBackOff()
			}
		}
		if l.OnRetry != nil {
			l.OnRetry(attempt, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-l.Kick:
			t.Stop()
			fresh()
			attempt = 0
		case <-t.C:
		}
	}
}

// session runs one session, cancelling it with ErrKick if Kick delivers
// meanwhile; kicked says whether it did.
func (l *Loop) session(ctx context.Context, up func()) (kicked bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	watched := make(chan bool, 1)
	go func() {
		select {
		case <-l.Kick:
			cancel(ErrKick)
			watched <- true
		case <-sctx.Done():
			watched <- false
		}
	}()
	err = l.Session(sctx, up)
	cancel(nil)
	return <-watched, err
}
