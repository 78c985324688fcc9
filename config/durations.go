package config

import (
	"fmt"
	"time"
)

// MaxShutdownGrace keeps shutdown_grace below the packaged units'
// TimeoutStopSec=20: after the grace rtunnel still cancels its forwards and
// exits, and systemd sends SIGKILL when TimeoutStopSec runs out.
const MaxShutdownGrace = 15 * time.Second

// maxDuration bounds every other duration: a day is longer than any useful
// setting, and it keeps keepalive interval × count_max (at most 1000) far
// from overflowing.
const maxDuration = 24 * time.Hour

// maxKeepaliveCount bounds keepalive.count_max (and ServerAliveCountMax
// from an ssh_config): with maxDuration it keeps interval × count_max far
// from overflowing.
const maxKeepaliveCount = 1000

// durationLimit is the range one duration key accepts.
type durationLimit struct {
	min, max time.Duration
	whyMax   string // appended to the message for a value above max
}

// durationLimits holds the range of every duration key, by its name in
// docs/CONFIG.md (which lists them all; a test keeps the two in step).
var durationLimits = map[string]durationLimit{
	"shutdown_grace": {0, MaxShutdownGrace,
		": the packaged unit's TimeoutStopSec=20 would end a longer grace with SIGKILL, not a clean exit"},
	"keepalive.interval":  {100 * time.Millisecond, maxDuration, ""},
	"connect_timeout":     {100 * time.Millisecond, maxDuration, ""},
	"forward_retry":       {10 * time.Millisecond, maxDuration, ""},
	"forward_retry_for":   {0, maxDuration, ""},
	"backoff.initial":     {10 * time.Millisecond, maxDuration, ""},
	"backoff.max":         {10 * time.Millisecond, maxDuration, ""},
	"backoff.reset_after": {0, maxDuration, ""},
}

// outside says why v is out of the range of the duration key called name,
// or returns "" when it is in range.
func outside(name string, v time.Duration) string {
	lim, ok := durationLimits[name]
	if !ok {
		panic("config: no limits for duration key " + name)
	}
	switch {
	case v < lim.min:
		return fmt.Sprintf("%s is below the minimum %s", short(v), short(lim.min))
	case v > lim.max:
		return fmt.Sprintf("%s is above the maximum %s%s", short(v), short(lim.max), lim.whyMax)
	}
	return ""
}
