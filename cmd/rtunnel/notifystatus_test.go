package main

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtunnel/rtunnel/health"
)

// STATUS= follows the tunnels' changes: at once after a quiet spell, then
// at most once a second however many changes come, only when the text
// differs, and not at all while nothing changes.
func TestStatusSentOnChangeAtMostOncePerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := health.New("test")
		var sent []string
		st := statusSender{health: h, send: func(s string) error { sent = append(sent, s); return nil }}
		defer st.stop()
		// loop is the supervisor loop's part in this: changes and the timer.
		loop := func(d time.Duration) {
			end := time.After(d)
			for {
				select {
				case <-h.Changes():
					st.changed()
				case <-st.due():
					st.update()
				case <-end:
					return
				}
			}
		}
		st.update()
		time.Sleep(2 * time.Second) // a quiet spell
		h.AddTunnel("hub", nil)
		loop(10 * time.Millisecond)
		if len(sent) != 2 || sent[1] != "0/1 tunnels up; hub: connecting" {
			t.Fatalf("sent %q", sent)
		}
		// A burst of 200 changes within half a second: one more STATUS, a
		// second after the previous one, with the last state.
		for i := range 200 {
			h.AddTunnel(fmt.Sprintf("t%d", i), nil)
			h.Retrying(fmt.Sprintf("t%d", i), 1, time.Minute, errors.New("connection refused"))
			if i%50 == 0 {
				loop(100 * time.Millisecond)
			}
		}
		loop(2 * time.Second)
		if len(sent) != 3 {
			t.Fatalf("after a burst: %d STATUS sent, want 3: %q", len(sent), sent)
		}
		if want := "0/201 tunnels up; "; sent[2][:len(want)] != want {
			t.Errorf("last STATUS %q, want it to count 201 tunnels", sent[2])
		}
		// Nothing changes for an hour: nothing is sent, no timer runs.
		loop(time.Hour)
		if len(sent) != 3 || st.timer != nil {
			t.Errorf("idle: %d sent, timer armed %v", len(sent), st.timer != nil)
		}
	})
}
