package fleet

import "strings"

// hubCounts is what sshd's log (LogLevel VERBOSE) says the hub did in one
// phase.
type hubCounts struct {
	Forks  int `json:"forks"`  // "Connection from": a child forked for an accepted connection
	Logins int `json:"logins"` // "Accepted publickey": a child that became a session
	Drops  int `json:"drops"`  // "past MaxStartups": closed by the listener before any fork
	Wasted int `json:"wasted"` // forked children that never became a session
}

// countHubLog reads the lines sshd -e wrote in one phase. With -e there is
// no PID on a line, so children are counted, not followed: every child
// logs "Connection from" once, and one that logs in "Accepted publickey"
// once; the difference is the pre-auth work the hub did for nothing.
func countHubLog(log string) hubCounts {
	var c hubCounts
	for _, line := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(line, "Connection from ") && strings.Contains(line, " on "):
			c.Forks++
		case strings.Contains(line, "Accepted publickey for "):
			c.Logins++
		case strings.Contains(line, "past MaxStartups"):
			c.Drops++
		}
	}
	c.Wasted = max(c.Forks-c.Logins, 0)
	return c
}
