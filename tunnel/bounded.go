package tunnel

import (
	"context"
	"sync/atomic"
	"time"
)

// bounded runs fn and calls abort (which must unblock fn, typically by
// closing a connection) if fn has not returned after d or when ctx ends.
// x/crypto has no deadlines on handshakes, channel opens or global requests.
func bounded(ctx context.Context, d time.Duration, abort func(), fn func() error) (err error, timedOut bool) {
	var fired atomic.Bool
	t := time.AfterFunc(d, func() {
		fired.Store(true)
		abort()
	})
	stop := context.AfterFunc(ctx, abort)
	err = fn()
	t.Stop()
	stop()
	if fired.Load() {
		return err, true
	}
	if ctx.Err() != nil {
		return ctx.Err(), false
	}
	return err, false
}
