package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtunnel/rtunnel/tunnel"
)

// logLines parses the JSON log and returns its entries at or above level.
func logLines(t *testing.T, out string, level slog.Level) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("bad log line %q: %v", l, err)
		}
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(e["level"].(string))); err != nil {
			t.Fatal(err)
		}
		if lv >= level {
			lines = append(lines, e)
		}
	}
	return lines
}

func refused(port string) error {
	return &tunnel.DialError{Hop: "root@127.0.0.1:" + port, Err: errors.New("dial tcp 127.0.0.1:" + port + ": connect: connection refused")}
}

// A port refused every 250 ms for three and a half minutes: the outage is
// logged when it starts, then once a minute with the count and the last
// reason; its end once, with the outage's length. Each attempt is still at
// debug level.
func TestRepeatedFailureLoggedOncePerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		f := &failureLog{log: slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})).With("tunnel", "hub")}
		start := time.Now()
		attempts := 0
		for time.Since(start) < 3*time.Minute+30*time.Second {
			attempts++
			f.failed(attempts, refused("2222"), 250*time.Millisecond)
			time.Sleep(250 * time.Millisecond)
		}
		f.recovered()

		info := logLines(t, out.String(), slog.LevelInfo)
		var msgs []string
		for _, e := range info {
			msgs = append(msgs, e["msg"].(string))
		}
		want := []string{
			"tunnel down; will retry",
			"still failing: 241 attempts since 00:00, last: connection refused",
			"still failing: 481 attempts since 00:00, last: connection refused",
			"still failing: 721 attempts since 00:00, last: connection refused",
			"tunnel recovered",
		}
		if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
			t.Fatalf("info and above:\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
		}
		if info[0]["level"] != "WARN" || info[0]["result"] != "dial" || !strings.Contains(info[0]["err"].(string), "connection refused") {
			t.Errorf("first line: %v", info[0])
		}
		if got := info[4]["down_for"]; got != "3m30s" || info[4]["failed_attempts"] != float64(attempts) {
			t.Errorf("recovery line: %v, want down_for 3m30s and %d attempts", info[4], attempts)
		}
		if all := logLines(t, out.String(), slog.LevelDebug); len(all) != attempts+1 {
			t.Errorf("%d lines at debug level, want one per attempt (%d) and the recovery", len(all), attempts)
		}
	})
}

// A new cause is logged at once; a cause that flaps back and forth is
// logged no more than once a minute, by the summary.
func TestFailureCauseChangeLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		f := &failureLog{log: slog.New(slog.NewJSONHandler(&out, nil))}
		timeout := &tunnel.TimeoutError{Step: "handshake", Hop: "hub", After: 15 * time.Second}
		f.failed(1, refused("2222"), time.Second)
		time.Sleep(time.Second)
		f.failed(2, refused("2222"), time.Second)
		time.Sleep(time.Second)
		f.failed(3, timeout, time.Second) // another cause
		for i := range 50 {               // flapping for 50 s
			time.Sleep(time.Second)
			if i%2 == 0 {
				f.failed(4+i, refused("2222"), time.Second)
			} else {
				f.failed(4+i, timeout, time.Second)
			}
		}
		info := logLines(t, out.String(), slog.LevelInfo)
		if len(info) != 2 || info[1]["msg"] != "tunnel still down, for another reason now; will retry" || info[1]["result"] != "timeout" {
			t.Fatalf("want the start and one cause change, got %v", info)
		}
		// A minute after the logged change, the cause differs from the one
		// logged (timeout) and is logged again.
		time.Sleep(10 * time.Second)
		f.failed(100, refused("2222"), time.Second)
		info = logLines(t, out.String(), slog.LevelInfo)
		if len(info) != 3 || info[2]["msg"] != "tunnel still down, for another reason now; will retry" || info[2]["result"] != "dial" {
			t.Fatalf("a minute on, want the change back to refused, got %v", info)
		}
	})
}

func TestFailureCauseIgnoresAddresses(t *testing.T) {
	a, ra := failureCause(errors.New("ssh: handshake failed: read tcp 127.0.0.1:40001->127.0.0.1:22: read: connection reset by peer"))
	b, rb := failureCause(errors.New("ssh: handshake failed: read tcp 127.0.0.1:40002->127.0.0.1:22: read: connection reset by peer"))
	if a != b || ra != rb || ra != "connection reset by peer" {
		t.Errorf("causes %q %q and %q %q, want the same, \"connection reset by peer\"", a, ra, b, rb)
	}
}

// A file problem that time may fix (tunnel.Slow) is retried, but the
// operator must see it: its lines are errors, like a refused key's, while
// a refused port stays a warning.
func TestFailureLevelNeedsOperator(t *testing.T) {
	missingKey := &tunnel.KeyFileError{Path: "/etc/rtunnel/id_ed25519", Fault: tunnel.FileUnreadable, Msg: "cannot read: no such file or directory"}
	if !tunnel.Slow(missingKey) {
		t.Fatal("a missing key is not tunnel.Slow: the test's premise is gone")
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{missingKey, "ERROR"},
		{&tunnel.AuthError{Hop: "root@127.0.0.1:22", Err: errors.New("ssh: unable to authenticate")}, "ERROR"},
		{refused("22"), "WARN"},
	} {
		var out strings.Builder
		f := &failureLog{log: slog.New(slog.NewJSONHandler(&out, nil))}
		f.failed(1, c.err, time.Second)
		lines := logLines(t, out.String(), slog.LevelInfo)
		if len(lines) != 1 || lines[0]["level"] != c.want {
			t.Errorf("%v: logged %v, want one %s line", c.err, lines, c.want)
		}
	}
}
