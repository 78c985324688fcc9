package main

import (
	"regexp"
	"sync"
)

// lazyRegexp compiles expr on first use. The subcommands' patterns
// compiled at package init cost every `rtunnel up` about 70 KB of heap that
// stays resident: an idle daemon never runs a GC to free it.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
