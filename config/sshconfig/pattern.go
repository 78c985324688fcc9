package sshconfig

import (
	"strings"

	"github.com/rtunnel/rtunnel/internal/sshpattern"
)

// matchPattern is OpenSSH's match_pattern (internal/sshpattern, shared
// with the tunnel's known_hosts matching).
func matchPattern(s, pattern string) bool { return sshpattern.Match(s, pattern) }

// matchList is OpenSSH's match_pattern_list for a comma-separated list in
// which "!pattern" excludes: true when some positive pattern matches and no
// negated one does.
func matchList(s, list string, fold bool) bool {
	if fold {
		s, list = strings.ToLower(s), strings.ToLower(list)
	}
	got := false
	for _, p := range strings.Split(list, ",") {
		if neg := strings.HasPrefix(p, "!"); neg {
			if matchPattern(s, p[1:]) {
				return false
			}
		} else if matchPattern(s, p) {
			got = true
		}
	}
	return got
}

// matchHostLine is a Host line: whitespace-separated patterns matched
// against the host as given, a matching "!pattern" vetoing the block.
func matchHostLine(host string, patterns []string) bool {
	got := false
	for _, p := range patterns {
		if neg := strings.HasPrefix(p, "!"); neg {
			if matchPattern(host, p[1:]) {
				return false
			}
		} else if matchPattern(host, p) {
			got = true
		}
	}
	return got
}
