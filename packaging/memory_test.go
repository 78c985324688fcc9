package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
)

// TestReleaseMemory measures an idle rtunnel (one tunnel up, metrics on) on
// this machine: the stripped release binary against the same commit built
// without -s -w. Stripping removes the symbol table and DWARF, which are
// never paged in, so neither resident nor anonymous memory may grow.
func TestReleaseMemory(t *testing.T) {
	dir := releaseDir(t)
	stripped := releaseFile(t, dir, "rtunnel-*-linux-amd64")
	unstripped := filepath.Join(t.TempDir(), "rtunnel-unstripped")
	build := exec.Command("go", "build", "-trimpath", "-o", unstripped, "./cmd/rtunnel")
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("unstripped build: %v\n%s", err, out)
	}
	s := idleMemory(t, stripped)
	u := idleMemory(t, unstripped)
	for _, k := range []string{"Rss", "Pss", "Anonymous"} {
		t.Logf("idle %-9s stripped %6d kB, unstripped %6d kB", k, s[k], u[k])
	}
	fi, _ := os.Stat(stripped)
	fu, _ := os.Stat(unstripped)
	t.Logf("file size: stripped %d bytes, unstripped %d bytes", fi.Size(), fu.Size())
	// Anonymous memory is the heap and stacks: the same code, so within
	// noise (GC timing); 10% slack.
	if s["Anonymous"] > u["Anonymous"]*11/10 {
		t.Errorf("stripped binary: %d kB anonymous, unstripped %d kB", s["Anonymous"], u["Anonymous"])
	}
	if s["Rss"] > u["Rss"]*11/10 {
		t.Errorf("stripped binary: %d kB resident, unstripped %d kB", s["Rss"], u["Rss"])
	}
}

// idleMemory starts bin with a tunnel up, lets it idle and reads
// /proc/PID/smaps_rollup (kB).
func idleMemory(t *testing.T, bin string) map[string]int {
	t.Helper()
	w := newDirectWorld(t)
	d := daemontest.StartCommand(t, []string{bin}, []string{"up", "--config", w.config})
	d.WaitMsg(0, 30*time.Second, "forward up")
	w.login(t)
	// Idle: a few keepalive rounds (interval 2s) and a GC cycle's worth.
	time.Sleep(6 * time.Second)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(d.PID()) + "/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[2] == "kB" {
			n, _ := strconv.Atoi(f[1])
			m[strings.TrimSuffix(f[0], ":")] = n
		}
	}
	if m["Rss"] == 0 {
		t.Fatalf("smaps_rollup of pid %d: %q", d.PID(), b)
	}
	return m
}
