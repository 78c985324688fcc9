package reconnect

import (
	"context"
	"errors"
	"sync"
)

// ErrKick is the cause a kicked session's context is cancelled with.
var ErrKick = errors.New("reconnect requested")

// Kicks takes a loop's kicks (reconnect now: what autossh does on
// SIGUSR1) without a goroutine per session: a kick cancels the running
// session's context itself, and one that comes between sessions is kept
// for the loop's wait. A process holds many idle tunnels, and a goroutine
// that did nothing but wait for a kick was one more in each (issue 12).
// Loop keeps one; a caller that runs its own loop (hubs) keeps one too.
// The zero value is ready; a Kicks must not be copied.
type Kicks struct {
	mu     sync.Mutex
	cancel context.CancelCauseFunc // the running session's; nil between sessions
	// pending holds a kick that came between sessions (capacity 1: more
	// kicks before the next wait are the same request).
	pending chan struct{}
}

// Kick ends the running session (its context is cancelled with ErrKick);
// between sessions, it ends the current wait, or the next one.
func (k *Kicks) Kick() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cancel != nil {
		k.cancel(ErrKick)
		return
	}
	select {
	case k.pendingLocked() <- struct{}{}:
	default: // one is pending already
	}
}

// Pending delivers a kick that came between sessions: a loop's wait ends
// on it.
func (k *Kicks) Pending() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pendingLocked()
}

func (k *Kicks) pendingLocked() chan struct{} {
	if k.pending == nil {
		k.pending = make(chan struct{}, 1)
	}
	return k.pending
}

// Begin hands Kicks the cancel of the session about to run; End takes it
// back. A kick still pending (it came after the wait ended) cancels the
// session at once: the loop then starts afresh, as after any kick, and no
// kick is lost or held over for a later wait.
func (k *Kicks) Begin(cancel context.CancelCauseFunc) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cancel = cancel
	select {
	case <-k.pendingLocked():
		cancel(ErrKick)
	default:
	}
}

// End: the session has returned; kicks from now on are kept for the wait.
func (k *Kicks) End() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cancel = nil
}
