package config

import (
	"regexp"
	"strings"
	"testing"
)

// tunnelNamePattern is the documented rule for a tunnel's name, which
// validName implements by hand.
var tunnelNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// validName accepts exactly what the pattern does.
func TestValidNameMatchesPattern(t *testing.T) {
	for _, s := range []string{
		"", "a", "Z", "0", "hub-1", "db.primary_2", "a" + strings.Repeat("x", 62), "a" + strings.Repeat("x", 63),
		"-a", ".a", "_a", "a b", "a/b", "a:b", "é", "aé", "a\n", "\na", "a-", "9.", strings.Repeat("-", 5),
	} {
		if got, want := validName(s), tunnelNamePattern.MatchString(s); got != want {
			t.Errorf("validName(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}
