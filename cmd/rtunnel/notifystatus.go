package main

import (
	"time"

	"github.com/rtunnel/rtunnel/health"
)

// statusSender keeps systemd's STATUS= in step with the tunnels: it sends
// when health reports a change, at most once per statusEvery, and only
// when the text differs. An idle process sends nothing and sets no timer.
type statusSender struct {
	send   func(status string) error // Notifier.Status
	health *health.Health
	last   string
	sentAt time.Time
	timer  *time.Timer // armed while a change waits for statusEvery to pass
}

// changed sends now, or arms the timer when a STATUS went out less than
// statusEvery ago.
func (st *statusSender) changed() {
	if st.timer != nil {
		return // an update is already due
	}
	if wait := statusEvery - time.Since(st.sentAt); wait > 0 {
		st.timer = time.NewTimer(wait)
		return
	}
	st.update()
}

// due delivers when the armed timer fires; nil (never) when none is armed.
func (st *statusSender) due() <-chan time.Time {
	if st.timer == nil {
		return nil
	}
	return st.timer.C
}

// update sends the current STATUS if it changed.
func (st *statusSender) update() {
	st.stop()
	line := st.health.StatusLine()
	if line == st.last {
		return
	}
	st.last, st.sentAt = line, time.Now()
	_ = st.send(line)
}

func (st *statusSender) stop() {
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
}
