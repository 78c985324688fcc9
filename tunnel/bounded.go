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
	t := time.AfterFunc(d, func() { abortOnce(true) })
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
