package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// With RTUNNEL_BENCH_TRACE=strace (or perf), every measured throughput
// transfer is followed by one more, not measured, with the tracer attached
// to the whole client tree: `strace -c -f` counts syscalls, `perf record -g`
// samples where the CPU goes. Output lands in results/trace/. The traced
// transfer moves at most 256 MiB: scale counts to per-GiB by hand.

const traceMax = 256 << 20

func traceThroughput(t *testing.T, w *world, p params, c clientSpec, r *running, dir direction) {
	t.Helper()
	tool := os.Getenv("RTUNNEL_BENCH_TRACE")
	if tool == "" {
		return
	}
	if err := os.MkdirAll(filepath.Join("results", "trace"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join("results", "trace", fmt.Sprintf("%s-%s-%s", strings.ReplaceAll(c.name, ":", "_"), dir, short(r.hub.cipher)))
	var pids []string
	for _, pr := range tree(r.pid) {
		pids = append(pids, strconv.Itoa(pr.pid))
	}
	var cmd *exec.Cmd
	switch tool {
	case "strace":
		args := []string{"-c", "-f", "-o", base + ".strace.txt"}
		for _, pid := range pids {
			args = append(args, "-p", pid)
		}
		cmd = exec.Command("strace", args...)
	case "perf":
		cmd = exec.Command("perf", "record", "-g", "-o", base+".perf.data", "-p", strings.Join(pids, ","))
	default:
		t.Fatalf("RTUNNEL_BENCH_TRACE=%q: want strace or perf", tool)
	}
	var out lockedBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	time.Sleep(time.Second) // let it attach to every thread
	n := min(p.size, traceMax)
	_, _, err := throughput(r, w.pat, n, p.verify, dir)
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	if err != nil {
		t.Errorf("%s traced throughput %s: %v", c.name, dir, err)
	}
	if tool == "perf" {
		rep, _ := exec.Command("perf", "report", "--stdio", "--no-children", "-i", base+".perf.data", "--percent-limit", "0.5", "-g", "none").CombinedOutput()
		_ = os.WriteFile(base+".perf.txt", rep, 0o644)
	}
	t.Logf("traced %s %s %s (%d MiB): %s.%s.txt", c.name, dir, short(r.hub.cipher), n>>20, base, tool)
}
