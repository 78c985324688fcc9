package tunnel

import (
	"testing"
	"time"
)

// TestAckWatchTellsALostLinkFromAFullAcceptQueue feeds ackWatch the
// tcp_info samples of the two cases it must tell apart: a link that drops
// every packet (nothing arrives: replace the connection at 2 s), and a hub
// whose accept queue was full when the handshake's last ACK came (no ACK,
// but its kernel repeats the SYN-ACK: keep the connection, it will be
// accepted).
func TestAckWatchTellsALostLinkFromAFullAcceptQueue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type sample struct {
		at     time.Duration // since connect
		ackAge time.Duration
		segs   uint32
		lost   bool
	}
	cases := map[string][]sample{
		"lost link": {
			{0, 0, 1, false}, // the SYN-ACK
			{500 * time.Millisecond, 500 * time.Millisecond, 1, false},
			{1500 * time.Millisecond, 1500 * time.Millisecond, 1, false},
			{2 * time.Second, 2 * time.Second, 1, true},
		},
		"half-open on a full accept queue": {
			{0, 0, 1, false},
			{500 * time.Millisecond, 500 * time.Millisecond, 1, false},
			{1100 * time.Millisecond, 1100 * time.Millisecond, 2, false}, // SYN-ACK again
			{2 * time.Second, 2 * time.Second, 2, false},
			{6 * time.Second, 6 * time.Second, 3, false},
		},
		"a live server ACKing, then a lost link": {
			{0, 0, 1, false},
			{1 * time.Second, 200 * time.Millisecond, 3, false}, // banner and an ACK
			{2 * time.Second, 1200 * time.Millisecond, 3, false},
			{2900 * time.Millisecond, 2100 * time.Millisecond, 3, true},
		},
		"ACKs on time (the age resets every second)": {
			{0, 0, 1, false},
			{1900 * time.Millisecond, 900 * time.Millisecond, 2, false},
			{2900 * time.Millisecond, 900 * time.Millisecond, 3, false},
			{3900 * time.Millisecond, 900 * time.Millisecond, 4, false},
		},
	}
	for name, samples := range cases {
		t.Run(name, func(t *testing.T) {
			var w ackWatch
			for _, s := range samples {
				if got := w.lost(t0.Add(s.at), s.ackAge, s.segs); got != s.lost {
					t.Errorf("at %v (no ACK for %v, %d segments): lost = %v, want %v", s.at, s.ackAge, s.segs, got, s.lost)
				}
			}
		})
	}
}
