// Package sshpattern is OpenSSH's host pattern: the one matcher behind
// ssh_config's Host and Match lines (config/sshconfig) and known_hosts'
// @cert-authority host lists (tunnel). Product code, standard library only.
package sshpattern

// Match is OpenSSH's match_pattern: '*' is any run of characters, '?' any
// one character, everything else literal and case sensitive (callers fold
// case where OpenSSH does).
func Match(s, pattern string) bool {
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
				if Match(s[i:], pattern) {
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
