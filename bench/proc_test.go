package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// The client's cost is read from /proc for its whole process tree: autossh
// and the ssh it runs count together, as an operator's unit would.

// clkTck is USER_HZ, the unit of utime/stime in /proc/PID/stat; it is 100
// on every Linux architecture Go supports.
const clkTck = 100

type procInfo struct {
	pid, ppid int
	cpuTicks  uint64 // utime+stime+cutime+cstime: reaped children count too
}

func readProc(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, false
	}
	// After ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime ...
	f := bytes.Fields(b[i+1:])
	if len(f) < 15 || f[0][0] == 'Z' {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	var ticks uint64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseUint(string(f[k]), 10, 64)
		ticks += v
	}
	return procInfo{pid: pid, ppid: ppid, cpuTicks: ticks}, true
}

// tree returns root and every live descendant.
func tree(root int) []procInfo {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	children := map[int][]procInfo{}
	var self procInfo
	found := false
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if !ok {
			continue
		}
		if pid == root {
			self, found = p, true
		}
		children[p.ppid] = append(children[p.ppid], p)
	}
	if !found {
		return nil
	}
	out := []procInfo{self}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i].pid]...)
	}
	return out
}

// treeCPU is the user+system CPU seconds of root's tree so far, and how many
// processes it counted.
func treeCPU(root int) (float64, int) {
	var ticks uint64
	procs := tree(root)
	for _, p := range procs {
		ticks += p.cpuTicks
	}
	return float64(ticks) / clkTck, len(procs)
}

// mem is one process tree's memory, in bytes, summed from
// /proc/PID/smaps_rollup.
type mem struct {
	rss  float64 // resident, file-backed and anonymous
	pss  float64 // resident, shared pages divided among their users
	anon float64 // anonymous: what only swap could take back (heap, stacks)
}

// treeMem sums root's tree's smaps_rollup.
func treeMem(root int) mem {
	var m mem
	for _, p := range tree(root) {
		if pm, ok := smapsRollup(p.pid); ok {
			m.rss += pm.rss
			m.pss += pm.pss
			m.anon += pm.anon
		}
	}
	return m
}

func smapsRollup(pid int) (m mem, ok bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return mem{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var got int
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), ":")
		if !found {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) < 1 {
			continue
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch k {
		case "Rss":
			m.rss, got = kb*1024, got|1
		case "Pss":
			m.pss, got = kb*1024, got|2
		case "Anonymous":
			m.anon, got = kb*1024, got|4
		}
	}
	return m, got == 7
}

// listenOverflows is the kernel's TcpExt ListenOverflows counter: SYNs or
// handshakes dropped because a listener's accept queue was full. It is
// system-wide; during a concurrency run it counts the hub sshd's forwarded
// listener, whose backlog OpenSSH fixes at 128 (SSH_LISTEN_BACKLOG).
func listenOverflows() (uint64, bool) {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		keys, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(keys) == 0 || keys[0] != "TcpExt:" || len(keys) != len(vals) {
			continue
		}
		for j, k := range keys {
			if k == "ListenOverflows" {
				v, err := strconv.ParseUint(vals[j], 10, 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}
