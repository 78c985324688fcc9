package systemdtest

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The unit properties every step records in the transcript.
var transcriptProps = []string{"ActiveState", "SubState", "Result", "ReloadResult",
	"ExecMainStatus", "ExecMainCode", "MainPID", "NRestarts", "WatchdogUSec", "StatusText"}

// show returns the named properties of unit as `systemctl show` prints them.
func (c *container) show(t *testing.T, unit string, props ...string) map[string]string {
	t.Helper()
	out := c.sh(t, "systemctl show "+unit+" -p "+strings.Join(props, ","))
	m := make(map[string]string, len(props))
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// prop returns one property of unit.
func (c *container) prop(t *testing.T, unit, name string) string {
	t.Helper()
	return c.show(t, unit, name)[name]
}

// waitProp polls unit until ok accepts the property's value, for at most
// limit, and returns the last value and whether ok accepted it.
func (c *container) waitProp(t *testing.T, unit, name string, limit time.Duration, ok func(string) bool) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		v := c.prop(t, unit, name)
		if ok(v) {
			return v, true
		}
		if time.Now().After(deadline) {
			return v, false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitRunning waits until unit runs (a process that finished starting,
// not one waiting to be restarted) and shows status, and fails otherwise.
func (c *container) waitRunning(t *testing.T, unit, status string) {
	t.Helper()
	limit := watchdogTimeout + restartDelay + 10*time.Second
	if v, ok := c.waitProp(t, unit, "SubState", limit, equals("running")); !ok {
		t.Fatalf("%s SubState=%s after %s, want running", unit, v, limit)
	}
	if v, ok := c.waitProp(t, unit, "StatusText", 30*time.Second, equals(status)); !ok {
		t.Fatalf("%s StatusText=%q, want %q", unit, v, status)
	}
}

// cursor returns the journal's current end, for journalSince.
func (c *container) cursor(t *testing.T) string {
	t.Helper()
	out := c.sh(t, "journalctl --show-cursor -n 0 --no-pager")
	_, cur, ok := strings.Cut(out, "-- cursor: ")
	if !ok {
		t.Fatalf("journalctl --show-cursor printed no cursor: %q", out)
	}
	return strings.TrimSpace(cur)
}

// journalSince returns the messages (-o cat) written after cursor (all of
// them for "") that match the journalctl arguments args.
func (c *container) journalSince(t *testing.T, cursor, args string) string {
	t.Helper()
	after := ""
	if cursor != "" {
		after = "--after-cursor='" + cursor + "' "
	}
	return c.sh(t, "journalctl --no-pager -o cat "+after+args)
}

// journalHas reports whether an entry written after cursor that matches
// args mentions want (case-insensitively) in its message or in any field,
// so a key=value in the text and a journal field KEY=value both count.
// It returns the entries' text, shortened to their end.
func (c *container) journalHas(t *testing.T, cursor, args, want string) (string, bool) {
	t.Helper()
	out := c.journalSince(t, cursor, args+" -o verbose")
	found := strings.Contains(strings.ToLower(out), strings.ToLower(want))
	if len(out) > 16000 {
		out = "..." + out[len(out)-16000:]
	}
	return out, found
}

// waitJournal polls journalHas until it finds want, for at most limit.
func (c *container) waitJournal(t *testing.T, cursor, args, want string, limit time.Duration) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		out, ok := c.journalHas(t, cursor, args, want)
		if ok || time.Now().After(deadline) {
			return out, ok
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// transcript records the unit properties after each step, for the issue
// note: printed by the test and written to $RTUNNEL_SYSTEMD_TRANSCRIPT.
type transcript struct {
	mu    sync.Mutex
	start time.Time
	lines []string
}

func (tr *transcript) record(t *testing.T, c *container, step, unit string) map[string]string {
	t.Helper()
	m := c.show(t, unit, transcriptProps...)
	var b strings.Builder
	fmt.Fprintf(&b, "[%6.1fs] %s (%s):", time.Since(tr.start).Seconds(), step, unit)
	for _, k := range transcriptProps {
		v := m[k]
		if k == "StatusText" {
			v = fmt.Sprintf("%q (%d bytes)", truncate(v, 200), len(v))
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	tr.mu.Lock()
	tr.lines = append(tr.lines, b.String())
	tr.mu.Unlock()
	t.Log(b.String())
	return m
}

func (tr *transcript) write(t *testing.T) {
	path := os.Getenv("RTUNNEL_SYSTEMD_TRANSCRIPT")
	if path == "" {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if err := os.WriteFile(path, []byte(strings.Join(tr.lines, "\n")+"\n"), 0o644); err != nil {
		t.Errorf("write transcript: %v", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
