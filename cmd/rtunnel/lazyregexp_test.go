package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// An idle daemon never runs a GC, so what package init allocates stays
// resident for good. This test binary's own init (GODEBUG=inittrace=1)
// shows what main's and config's package variables cost; the subcommands'
// patterns compiled at init made main's about 70 KB, the tunnel-name
// pattern config's about 80 KB.
func TestPackageInitAllocatesLittle(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// In a test binary package main is known by its import path.
	limits := map[string]int{"github.com/rtunnel/rtunnel/cmd/rtunnel": 16 << 10, "github.com/rtunnel/rtunnel/config": 32 << 10}
	line := regexp.MustCompile(`(?m)^init (\S+) @.* (\d+) bytes, \d+ allocs$`)
	seen := 0
	for _, m := range line.FindAllStringSubmatch(string(out), -1) {
		limit, ok := limits[m[1]]
		if !ok {
			continue
		}
		seen++
		n, _ := strconv.Atoi(m[2])
		t.Logf("init %s: %d bytes", m[1], n)
		if n > limit {
			t.Errorf("package init of %s allocates %d bytes, want at most %d: compile patterns on first use (lazyRegexp)", m[1], n, limit)
		}
	}
	if seen != len(limits) {
		t.Fatalf("inittrace showed %d of the %d packages:\n%s", seen, len(limits), out)
	}
}
