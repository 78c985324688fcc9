package daemontest

import "strings"

// IsRetry reports whether e is rtunnel's line about one failed attempt and
// its scheduled retry. Since failures are rate-limited in the log
// (cmd/rtunnel/failurelog.go), only the first of an outage and a change of
// cause are at WARN (ERROR for a refused key), a summary once a minute, and
// every other attempt at DEBUG: a test that counts attempts runs rtunnel
// with log.level debug and counts these. Each carries result, err and
// retry_in.
func IsRetry(e Entry) bool {
	switch msg := e.Msg(); msg {
	case "tunnel down; will retry", "tunnel still down, for another reason now; will retry", "tunnel down again; will retry":
		return true
	default:
		return strings.HasPrefix(msg, "still failing: ")
	}
}

// Retries returns the retry lines (IsRetry) from index from on.
func (d *Daemon) Retries(from int) []Entry {
	var out []Entry
	for _, e := range d.Entries(from) {
		if IsRetry(e) {
			out = append(out, e)
		}
	}
	return out
}
