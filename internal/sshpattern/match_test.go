package sshpattern

import "testing"

func TestMatch(t *testing.T) {
	cases := []struct {
		s, pattern string
		want       bool
	}{
		{"hub.example.com", "hub.example.com", true},
		{"hub.example.com", "*.example.com", true},
		{"example.com", "*.example.com", false},
		{"hub1", "hub?", true},
		{"hub", "hub?", false},
		{"hub12", "hub?", false},
		{"anything", "*", true},
		{"", "*", true},
		{"", "", true},
		{"a", "", false},
		{"abcabc", "a**c", true},
		{"abcabd", "a*c", false},
		{"Hub", "hub", false}, // case sensitive; callers fold
		{"[10.0.0.1]:2222", "[10.0.0.?]:2222", true},
	}
	for _, c := range cases {
		if got := Match(c.s, c.pattern); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.s, c.pattern, got, c.want)
		}
	}
}
