package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// durationSnippets places a value for each duration key in a valid file.
var durationSnippets = map[string]struct{ top, tunnel string }{
	"shutdown_grace":      {top: "shutdown_grace: %s\n"},
	"keepalive.interval":  {tunnel: "    keepalive: {interval: %s}\n"},
	"connect_timeout":     {tunnel: "    connect_timeout: %s\n"},
	"forward_retry":       {tunnel: "    forward_retry: %s\n"},
	"forward_retry_for":   {tunnel: "    forward_retry_for: %s\n"},
	"backoff.initial":     {tunnel: "    backoff: {initial: %s, max: 24h}\n"},
	"backoff.max":         {tunnel: "    backoff: {initial: 10ms, max: %s}\n"},
	"backoff.reset_after": {tunnel: "    backoff: {reset_after: %s}\n"},
}

// TestDurationLimitsInclusive: each key accepts its minimum and its maximum
// and refuses a nanosecond beyond either. bad_duration_range.yaml pins the
// messages.
func TestDurationLimitsInclusive(t *testing.T) {
	for name, lim := range durationLimits {
		snip, ok := durationSnippets[name]
		if !ok {
			t.Errorf("no snippet for duration key %s: add one to durationSnippets", name)
			continue
		}
		file := func(v string) string {
			var top, tun string
			if snip.top != "" {
				top = fmt.Sprintf(snip.top, v)
			} else {
				tun = fmt.Sprintf(snip.tunnel, v)
			}
			return top + strings.Replace(goodYAML, "    forwards:", tun+"    forwards:", 1)
		}
		for _, v := range []string{lim.min.String(), lim.max.String()} {
			if _, err := Parse("f.yaml", []byte(file(v))); err != nil {
				t.Errorf("%s: %s refused: %v", name, v, err)
			}
		}
		for _, v := range []string{(lim.min - 1).String(), (lim.max + 1).String()} {
			if _, err := Parse("f.yaml", []byte(file(v))); err == nil {
				t.Errorf("%s: %s accepted, want refused", name, v)
			}
		}
	}
}

// TestDurationLimitsDocumented keeps docs/CONFIG.md's table of duration
// ranges in step with the code.
func TestDurationLimitsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, lim := range durationLimits {
		row := fmt.Sprintf("| `%s` | `%s` | `%s` |", name, short(lim.min), short(lim.max))
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/CONFIG.md has no row %q", row)
		}
	}
}
