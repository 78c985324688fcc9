package health

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// systemd drops a notify datagram of 4096 bytes or more, and with it the
// new STATUS: the line stays short however many tunnels are down and however
// long their names and errors are.
func TestStatusLineBoundedWithManyTunnelsDown(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name    string
		tunnels int
		tname   func(i int) string
		err     string
	}{
		{"60 down", 60, func(i int) string { return fmt.Sprintf("remote-%03d", i) }, "dial tcp 10.0.0.1:22: connect: connection refused"},
		{"500 down", 500, func(i int) string { return fmt.Sprintf("remote-%03d", i) }, "dial tcp 10.0.0.1:22: connect: connection refused"},
		{"long names and errors", 80, func(i int) string { return fmt.Sprintf("%s-%03d", long, i) }, "handshake: " + strings.Repeat("é", 2000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newTestHealth(t)
			for i := range tc.tunnels {
				name := tc.tname(i)
				h.AddTunnel(name, []string{fwSSH})
				h.Retrying(name, 3, 4*time.Second, errors.New(tc.err))
			}
			h.Connected(tc.tname(0))
			h.ForwardUp(tc.tname(0), fwSSH)
			line := h.StatusLine()
			// Five details of at most ~270 bytes each, the counts and the tail.
			if len("STATUS="+line) >= 1536 {
				t.Errorf("STATUS is %d bytes, want well under 4096 (under 1536):\n%s", len(line), line)
			}
			if want := fmt.Sprintf("1/%d tunnels up; ", tc.tunnels); !strings.HasPrefix(line, want) {
				t.Errorf("STATUS does not start with the counts %q: %q", want, line)
			}
			if want := fmt.Sprintf("; and %d more", tc.tunnels-1-statusMaxDetails); !strings.HasSuffix(line, want) {
				t.Errorf("STATUS does not end with %q: %q", want, line)
			}
			if got := strings.Count(line, ": down ("); got != statusMaxDetails {
				t.Errorf("STATUS names %d down tunnels, want %d: %q", got, statusMaxDetails, line)
			}
			if !strings.Contains(line, clip(tc.tname(1), statusMaxName)+": down (") {
				t.Errorf("STATUS does not name the first down tunnel: %q", line)
			}
		})
	}
}

func TestClipCutsOnARuneBoundary(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijkl", 10, "abcdefg..."},
		{"ééééé", 8, "éé..."}, // 2 bytes each: "ééé" would be 6+3 > 8
	} {
		if got := clip(tc.in, tc.max); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// Changes signals after each kind of state change and coalesces: one
// pending signal covers many changes.
func TestChangesSignalStateChanges(t *testing.T) {
	h, _ := newTestHealth(t)
	expect := func(what string, want bool) {
		t.Helper()
		select {
		case <-h.Changes():
			if !want {
				t.Errorf("%s: a change was signalled", what)
			}
		default:
			if want {
				t.Errorf("%s: no change signalled", what)
			}
		}
	}
	h.AddTunnel("hub", []string{fwSSH})
	expect("AddTunnel", true)
	expect("nothing since", false)
	for _, step := range []struct {
		name string
		do   func()
	}{
		{"ConnectAttempt", func() { h.ConnectAttempt("hub") }},
		{"Connected", func() { h.Connected("hub") }},
		{"ForwardUp", func() { h.ForwardUp("hub", fwSSH) }},
		{"ForwardDown", func() { h.ForwardDown("hub", fwSSH) }},
		{"Disconnected", func() { h.Disconnected("hub", errors.New("EOF")) }},
		{"Retrying", func() { h.Retrying("hub", 1, time.Second, errors.New("EOF")) }},
		{"Stopped", func() { h.Stopped("hub", errors.New("host key changed")) }},
		{"RemoveTunnel", func() { h.RemoveTunnel("hub") }},
	} {
		step.do()
		expect(step.name, true)
	}
	h.AddTunnel("a", nil)
	h.AddTunnel("b", nil)
	h.Connected("a")
	expect("four changes", true)
	expect("after the coalesced signal", false)
	h.Bytes("a", fwSSH, "in", 10)
	h.KeepaliveRTT("a", time.Millisecond)
	expect("counters only", false)
}
