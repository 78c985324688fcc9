package tunnel

import (
	"context"
	"sync"
	"time"
)

// bounded runs fn and calls abort (which must unblock fn, typically by
// closing a connection) if fn has not returned after d or when ctx ends.
// x/crypto has no deadlines on handshakes, channel opens or global requests.
//
// Abort and success exclude each other: a timer that fires as fn returns
// either finds fn done and does nothing, or aborts and makes bounded report
// the timeout (or ctx's error), never success next to an abort that closes
// what fn just set up. bounded returns after any abort it started has.
func bounded(ctx context.Context, d time.Duration, abort func(), fn func() error) (err error, timedOut bool) {
	return boundedBy(ctx, d, nil, abort, fn)
}

// boundedBy is bounded whose time limit may be extended: when d has
// passed, more (if not nil) says how much longer fn may run, and 0 aborts.
func boundedBy(ctx context.Context, d time.Duration, more func() time.Duration, abort func(), fn func() error) (err error, timedOut bool) {
	var (
		mu       sync.Mutex
		finished bool
		byTimer  bool
		aborting bool
		aborted  = make(chan struct{})
	)
	// The first of the timer and ctx to arrive before fn has returned
	// aborts; anything later does nothing.
	abortOnce := func(timer bool) {
		mu.Lock()
		if finished || aborting {
			mu.Unlock()
			return
		}
		aborting, byTimer = true, timer
		mu.Unlock()
		defer close(aborted)
		abort()
	}
	var t *time.Timer
	// Armed only once t is set: the callback may re-arm it.
	t = time.AfterFunc(time.Duration(1<<62), func() {
		if more != nil {
			if wait := more(); wait > 0 {
				t.Reset(wait)
				return
			}
		}
		abortOnce(true)
	})
	t.Reset(d)
	stop := context.AfterFunc(ctx, func() { abortOnce(false) })
	err = fn()
	t.Stop()
	stop()
	mu.Lock()
	finished = true
	wasAborted, timer := aborting, byTimer
	mu.Unlock()
	if wasAborted {
		<-aborted
		if timer {
			return err, true
		}
		return ctx.Err(), false
	}
	if ctx.Err() != nil {
		return ctx.Err(), false
	}
	return err, false
}
