package sshconfig

import "strings"

// matchPattern is OpenSSH's match_pattern: '*' is any run of characters,
// '?' any one character, everything else literal and case sensitive.
func matchPattern(s, pattern string) bool {
	for {
		if pattern == "" {
			return s == ""
		}
		switch pattern[0] {
		case '*':
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if matchPattern(s[i:], pattern) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
		}
		s, pattern = s[1:], pattern[1:]
	}
}

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
