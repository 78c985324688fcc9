package sshdtest

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// A process group is not enough to find sshd's session processes: each
// per-connection sshd calls setsid() and re-execs itself. So descendants are
// found by walking parent PIDs in /proc.

// procStat is the part of /proc/PID/stat this package needs.
type procStat struct {
	pid, ppid int
	state     byte
	start     uint64 // start time in clock ticks since boot: tells a reused PID apart
}

// readStat parses /proc/PID/stat. The command name (field 2) may hold spaces
// and parentheses, so parsing starts after its last ')'.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	// After ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime priority nice num_threads
	// itrealvalue starttime ...
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	start, err2 := strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{pid: pid, ppid: ppid, state: f[0][0], start: start}, true
}

// allProcs reads the stat of every process visible in /proc.
func allProcs() []procStat {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	procs := make([]procStat, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			procs = append(procs, st)
		}
	}
	return procs
}

// descendants returns every live (non-zombie) process below root, parents
// before children.
func descendants(root int) []procStat {
	children := map[int][]procStat{}
	for _, p := range allProcs() {
		children[p.ppid] = append(children[p.ppid], p)
	}
	var out []procStat
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if c.pid == root {
				continue
			}
			queue = append(queue, c.pid)
			if c.state != 'Z' {
				out = append(out, c)
			}
		}
	}
	return out
}

// freezeTree stops root and then every descendant with SIGSTOP, re-walking
// until no new process appears, so nothing forks or reparents while the tree
// is being killed. It returns the descendants it stopped.
func freezeTree(root int) []procStat {
	_ = syscall.Kill(root, syscall.SIGSTOP)
	seen := map[int]bool{}
	var frozen []procStat
	for range 20 {
		grew := false
		for _, p := range descendants(root) {
			if seen[p.pid] {
				continue
			}
			seen[p.pid] = true
			grew = true
			_ = syscall.Kill(p.pid, syscall.SIGSTOP)
			frozen = append(frozen, p)
		}
		if !grew {
			break
		}
	}
	return frozen
}

// killProcs sends SIGKILL to each process that is still the one recorded
// (same PID and start time).
func killProcs(procs []procStat) {
	for _, p := range procs {
		if alive(p) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
}

// alive reports whether p still runs: same PID, same start time, not a zombie.
// A zombie counts as dead: its parent may be a PID 1 that never reaps.
func alive(p procStat) bool {
	st, ok := readStat(p.pid)
	return ok && st.start == p.start && st.state != 'Z'
}

// waitGone polls until none of procs is alive or timeout passes, and returns
// those still alive.
func waitGone(procs []procStat, timeout time.Duration) []procStat {
	deadline := time.Now().Add(timeout)
	for {
		var left []procStat
		for _, p := range procs {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}
