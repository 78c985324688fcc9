package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/tunnel"
)

// The e2e tests count attempts with daemontest.IsRetry, which lists the
// messages failureLog writes for a failed attempt. Each kind of line it
// writes (first failure, the same again at debug level, a new cause, the
// once-a-minute summary) must be one IsRetry knows, with the fields those
// tests read; a reworded message would otherwise make them count nothing.
func TestEveryFailureLineIsARetryForTheE2ETests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		f := &failureLog{log: slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		timedOut := &tunnel.DialError{Hop: "root@127.0.0.1:2222", Err: errors.New("dial tcp 127.0.0.1:2222: i/o timeout")}
		f.failed(1, refused("2222"), 250*time.Millisecond) // the outage starts
		time.Sleep(250 * time.Millisecond)
		f.failed(2, refused("2222"), 250*time.Millisecond) // the same again
		time.Sleep(250 * time.Millisecond)
		f.failed(3, timedOut, time.Second) // another cause
		time.Sleep(time.Minute)
		f.failed(4, timedOut, time.Second) // the summary

		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d log lines for 4 failed attempts, want 4:\n%s", len(lines), out.String())
		}
		for _, l := range lines {
			var e daemontest.Entry
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("bad log line %q: %v", l, err)
			}
			if !daemontest.IsRetry(e) {
				t.Errorf("daemontest.IsRetry does not know %q", e.Msg())
			}
			for _, k := range []string{"result", "err", "retry_in"} {
				if e.Str(k) == "" {
					t.Errorf("%q has no %s, which the e2e tests read", e.Msg(), k)
				}
			}
		}
	})
}
