package systemdtest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// manyDown is a config of n tunnels whose hub refuses every connection.
func manyDown(prefix string, n int, backoffMax string) string {
	tunnels := make([]tunnelSpec, n)
	for i := range tunnels {
		tunnels[i] = tunnelSpec{name: fmt.Sprintf("%s-%03d", prefix, i), port: deadPort, remote: 3000 + i, backoffMax: backoffMax}
	}
	return rtunnelConfig("1s", 0, tunnels)
}

// systemd 252 drops a notify datagram of 4096 bytes or more with this line.
const notifyTooBig = "notify message exceeded maximum size"

// testSixtyDown: with 60 tunnels down, the STATUS line must still reach
// systemd (issue 14.1): rtunnel listed every down tunnel, the datagram grew
// past 4096 bytes and systemd kept showing the last one that fit.
func testSixtyDown(t *testing.T, c *container, tr *transcript) {
	c.writeConfig(t, "down60", manyDown("down-tunnel", 60, "2s"))
	cur := c.cursor(t)
	if out, status := c.shStatus(t, 60*time.Second, "systemctl start rtunnel@down60"); status != 0 {
		t.Fatalf("systemctl start rtunnel@down60: status %d: %s", status, out)
	}
	defer c.sh(t, "systemctl stop rtunnel@down60")
	accurate := func(s string) bool {
		return strings.HasPrefix(s, "0/60 tunnels up; ") && strings.Contains(s, ": down (") && !strings.Contains(s, "connecting")
	}
	v, ok := c.waitProp(t, "rtunnel@down60", "StatusText", 20*time.Second, accurate)
	tr.record(t, c, "60 tunnels down", "rtunnel@down60")
	if !ok {
		t.Errorf("StatusText=%q (%d bytes) 20s after 60 tunnels failed, want 0/60 up and the failures", truncate(v, 300), len(v))
	}
	if pid1 := c.journalSince(t, cur, "_PID=1"); strings.Contains(pid1, notifyTooBig) {
		t.Errorf("systemd ignored rtunnel's notify messages: %q", firstLineWith(pid1, notifyTooBig))
	}
}

// journalEntry is what journalctl -o json gives for one of rtunnel's lines.
type journalEntry struct {
	Message  journalText `json:"MESSAGE"`
	Priority string      `json:"PRIORITY"`
	Tunnel   string      `json:"TUNNEL"`
	Comm     string      `json:"_COMM"`
}

// journalText is a journal field: journalctl -o json writes a string, or
// an array of bytes when the value is not printable UTF-8.
type journalText string

func (j *journalText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*j = journalText(s)
		return nil
	}
	var raw []byte
	var ints []int
	if err := json.Unmarshal(b, &ints); err != nil {
		return err
	}
	for _, i := range ints {
		raw = append(raw, byte(i))
	}
	*j = journalText(raw)
	return nil
}

// tunnelKey finds the tunnel a text or JSON log line is about, for when the
// line carries no TUNNEL= field.
var tunnelKey = regexp.MustCompile(`tunnel"?[=:]"?([A-Za-z0-9._-]+)`)

// testFlood: 200 tunnels fail every second for a minute. The journal must
// hold what the log-rate rule of issue 10.13 promises (a failure logged
// when it starts, when its cause changes, then at most once a minute per
// tunnel), and journald must have suppressed nothing. It then checks the
// journal priorities and fields of issue 14.2 on those lines.
func testFlood(t *testing.T, c *container, tr *transcript) {
	const n = 200
	const failing = 65 * time.Second
	c.writeConfig(t, "flood", manyDown("flood", n, "1s"))
	cur := c.cursor(t)
	if out, status := c.shStatus(t, 60*time.Second, "systemctl start rtunnel@flood"); status != 0 {
		t.Fatalf("systemctl start rtunnel@flood: status %d: %s", status, out)
	}
	// The point of this step is a minute of failures; there is no event
	// to wait for instead.
	time.Sleep(failing)
	tr.record(t, c, fmt.Sprintf("%d tunnels failing for %s", n, failing), "rtunnel@flood")
	c.sh(t, "systemctl stop rtunnel@flood")

	var entries []journalEntry
	perTunnel := map[string]int{}
	for _, line := range strings.Split(c.journalSince(t, cur, "-u rtunnel@flood _COMM=rtunnel -o json"), "\n") {
		if line == "" {
			continue
		}
		var e journalEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journalctl -o json: %v: %q", err, line)
		}
		entries = append(entries, e)
		name := e.Tunnel
		if m := tunnelKey.FindStringSubmatch(string(e.Message)); name == "" && m != nil {
			name = m[1]
		}
		if name != "" {
			perTunnel[name]++
		}
	}
	most, mostName := 0, ""
	for name, k := range perTunnel {
		if k > most {
			most, mostName = k, name
		}
	}
	t.Logf("%d lines from rtunnel in %s for %d tunnels; the most for one tunnel: %d (%s)", len(entries), failing, n, most, mostName)

	t.Run("JournaldSuppressedNothing", func(t *testing.T) {
		// journald logs "Suppressed N messages from UNIT" as itself.
		if j := c.journalSince(t, cur, "| grep -F Suppressed || true"); j != "" {
			t.Errorf("journald dropped messages: %q", firstLineWith(j, "Suppressed"))
		}
	})
	t.Run("EveryTunnelLogged", func(t *testing.T) {
		if len(perTunnel) != n {
			t.Errorf("the journal names %d of %d failing tunnels", len(perTunnel), n)
		}
	})
	t.Run("RateLimitedLines_10.13", func(t *testing.T) {
		// Start, a cause change, one "still failing" after a minute.
		if most > 3 {
			t.Errorf("tunnel %s has %d lines in %s, want at most 3 (start, cause change, once a minute)", mostName, most, failing)
		}
	})
	t.Run("PriorityWarning_14.2", func(t *testing.T) {
		out := c.journalSince(t, cur, "-u rtunnel@flood -p warning _COMM=rtunnel")
		if !strings.Contains(out, "flood-") {
			t.Errorf("journalctl -p warning -u rtunnel@flood shows none of rtunnel's failures:\n%s", truncate(out, 500))
		}
		prio := map[string]int{}
		for _, e := range entries {
			prio[e.Priority]++
		}
		t.Logf("priorities of rtunnel's lines: %v", prio)
	})
	t.Run("TunnelField_14.2", func(t *testing.T) {
		out := c.journalSince(t, cur, "-u rtunnel@flood TUNNEL=flood-007")
		if strings.TrimSpace(out) == "" {
			t.Errorf("journalctl -u rtunnel@flood TUNNEL=flood-007 returned nothing")
		}
	})
	t.Run("NoSecondTimestamp_14.2", func(t *testing.T) {
		for _, e := range entries {
			if msg := string(e.Message); strings.HasPrefix(msg, "time=") || strings.HasPrefix(msg, `{"time"`) {
				t.Errorf("a journal line carries its own timestamp: %q", truncate(msg, 120))
				break
			}
		}
	})
}

// testMainUnitJournal: the lines the earlier steps made rtunnel.service
// write (the hub stopped, a changed host key) are found by priority and by
// tunnel, as an operator would look for them (issue 14.2).
func testMainUnitJournal(t *testing.T, c *container, tr *transcript) {
	t.Run("PriorityWarning", func(t *testing.T) {
		out := c.journalSince(t, "", "-b -u rtunnel -p warning _COMM=rtunnel")
		if !strings.Contains(out, "2200") {
			t.Errorf("journalctl -p warning -u rtunnel shows none of the hub's failures:\n%s", truncate(out, 500))
		}
	})
	t.Run("TunnelField", func(t *testing.T) {
		if out := c.journalSince(t, "", "-b -u rtunnel TUNNEL=hub"); strings.TrimSpace(out) == "" {
			t.Errorf("journalctl -u rtunnel TUNNEL=hub returned nothing")
		}
	})
}

func firstLineWith(text, s string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
