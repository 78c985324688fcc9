package fleet

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// hubCounts is what sshd's log (LogLevel VERBOSE) says the hub did in one
// phase.
type hubCounts struct {
	Forks  int `json:"forks"`  // "Connection from": a child forked for an accepted connection
	Logins int `json:"logins"` // "Accepted publickey": a child that became a session
	Drops  int `json:"drops"`  // "past MaxStartups": closed by the listener before any fork
	Wasted int `json:"wasted"` // forked children that never became a session

	// How the wasted children ended, by the last line sshd wrote for their
	// client port: closed before the version exchange (the client gave up
	// while the connection sat in the accept queue, or before the child
	// wrote its banner), or in the key exchange or authentication
	// ("[preauth]").
	WastedBeforeBanner int `json:"wasted_before_banner"`
	WastedInHandshake  int `json:"wasted_in_handshake"`
	// WastedEndings counts those last lines with numbers and user names
	// blanked ("Connection closed by N.N.N.N port N [preauth]").
	WastedEndings map[string]int `json:"wasted_endings,omitempty"`
}

// blank turns a log line into its message: numbers and the fleet's user
// names (rtfleet...) replaced, so that lines of one kind count together.
var (
	numbers   = regexp.MustCompile(`[0-9]+`)
	fleetUser = regexp.MustCompile(`rtfleet[0-9a-f]+`)
)

// clientPort finds the client's port in a line such as "Connection closed by
// 127.0.0.1 port 57410 [preauth]" (the first "port N" is the client's).
var clientPort = regexp.MustCompile(` port (\d+)`)

// countHubLog reads the lines sshd -e wrote in one phase. With -e there is
// no PID on a line, so children are counted, not followed: every child
// logs "Connection from" once, and one that logs in "Accepted publickey"
// once; the difference is the pre-auth work the hub did for nothing.
func countHubLog(log string) hubCounts {
	var c hubCounts
	forked := map[string]bool{} // client port -> still waiting for a login
	last := map[string]string{} // client port -> the last line about it
	for _, line := range strings.Split(log, "\n") {
		port := ""
		if m := clientPort.FindStringSubmatch(line); m != nil {
			port = m[1]
			last[port] = line
		}
		switch {
		case strings.Contains(line, "Connection from ") && strings.Contains(line, " on "):
			c.Forks++
			forked[port] = true
		case strings.Contains(line, "Accepted publickey for "):
			c.Logins++
			delete(forked, port)
		case strings.Contains(line, "past MaxStartups"):
			c.Drops++
		}
	}
	c.Wasted = max(c.Forks-c.Logins, 0)
	for port := range forked {
		if c.WastedEndings == nil {
			c.WastedEndings = map[string]int{}
		}
		c.WastedEndings[numbers.ReplaceAllString(fleetUser.ReplaceAllString(strings.TrimSpace(last[port]), "USER"), "N")]++
		if strings.Contains(last[port], "[preauth]") {
			c.WastedInHandshake++
		} else {
			c.WastedBeforeBanner++
		}
	}
	return c
}

func TestCountHubLog(t *testing.T) {
	// Lines as OpenSSH 9.2's sshd -e writes them at LogLevel VERBOSE.
	log := `Server listening on 127.0.0.1 port 22.
beginning MaxStartups throttling
drop connection #11 from [127.0.0.1]:53968 on [127.0.0.1]:22 past MaxStartups
Connection from 127.0.0.1 port 57404 on 127.0.0.1 port 22 rdomain ""
Accepted publickey for rtfleet0b6380 from 127.0.0.1 port 57404 ssh2: ED25519 SHA256:abc
Connection from 127.0.0.1 port 57410 on 127.0.0.1 port 22 rdomain ""
Connection closed by 127.0.0.1 port 57410 [preauth]
Connection from 127.0.0.1 port 57420 on 127.0.0.1 port 22 rdomain ""
kex_exchange_identification: Connection closed by remote host
Connection closed by 127.0.0.1 port 57420
exited MaxStartups throttling after 00:00:01, 1 connections dropped
`
	got := countHubLog(log)
	want := hubCounts{Forks: 3, Logins: 1, Drops: 1, Wasted: 2, WastedBeforeBanner: 1, WastedInHandshake: 1,
		WastedEndings: map[string]int{
			"Connection closed by N.N.N.N port N [preauth]": 1,
			"Connection closed by N.N.N.N port N":           1,
		}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("countHubLog = %+v, want %+v", got, want)
	}
}
