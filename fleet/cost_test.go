package fleet

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A client's cost is read from /proc for its whole process tree: autossh
// and its ssh count together, as they would in an operator's unit.

// clkTck is USER_HZ, the unit of utime/stime in /proc/PID/stat (100 on
// every architecture Go supports).
const clkTck = 100

// usage is one process tree at one moment.
type usage struct {
	wakeups uint64 // voluntary context switches of every thread: each is a sleep that ended
	ticks   uint64 // user + system CPU, in clock ticks (10 ms)
	// cpuNS is the CPU time of every live thread in ns, from schedstat:
	// an idle process uses less than a tick a minute, so ticks alone
	// would say 0 or 10 ms.
	cpuNS   uint64
	pss     uint64 // bytes
	rss     uint64 // bytes
	threads int
}

// treeUsage sums root and its descendants; children is one scan of /proc
// (see childrenOf), shared by every root of a sample.
func treeUsage(root int, children map[int][]int) usage {
	var u usage
	for _, pid := range treePIDs(root, children) {
		dir := "/proc/" + strconv.Itoa(pid)
		tasks, _ := filepath.Glob(dir + "/task/*/status")
		for _, st := range tasks {
			u.wakeups += statusField(st, "voluntary_ctxt_switches")
			u.cpuNS += schedstatRunNS(filepath.Join(filepath.Dir(st), "schedstat"))
		}
		u.threads += len(tasks)
		if b, err := os.ReadFile(dir + "/stat"); err == nil {
			if i := bytes.LastIndexByte(b, ')'); i >= 0 {
				f := bytes.Fields(b[i+1:])
				if len(f) > 12 {
					ut, _ := strconv.ParseUint(string(f[11]), 10, 64)
					stm, _ := strconv.ParseUint(string(f[12]), 10, 64)
					u.ticks += ut + stm
				}
			}
		}
		u.pss += statusField(dir+"/smaps_rollup", "Pss") * 1024
		u.rss += statusField(dir+"/smaps_rollup", "Rss") * 1024
	}
	return u
}

// schedstatRunNS is the first field of a task's schedstat: the time it
// has run, in ns (0 where the kernel does not keep it).
func schedstatRunNS(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseUint(string(f[0]), 10, 64)
	return n
}

// statusField reads "Key:  N ..." from a /proc file.
func statusField(path, key string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			return 0
		}
		n, _ := strconv.ParseUint(fs[0], 10, 64)
		return n
	}
	return 0
}

// childrenOf maps each live process to its children, from one scan of
// /proc: scanning once per root would make a sample of N clients cost N
// scans of every process on the machine.
func childrenOf() map[int][]int {
	names, _ := filepath.Glob("/proc/[0-9]*/stat")
	children := map[int][]int{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 2 || f[0][0] == 'Z' {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(n)))
		ppid, _ := strconv.Atoi(string(f[1]))
		children[ppid] = append(children[ppid], pid)
	}
	return children
}

// treePIDs is root and every descendant.
func treePIDs(root int, children map[int][]int) []int {
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// idleCost is what idle clients cost, per process, over a window.
type idleCost struct {
	Procs int `json:"procs"`
	// StartS is when the window began, in seconds after the clients were
	// released: it says which part of a process's life the figures are.
	StartS      float64 `json:"start_after_release_s"`
	WindowS     float64 `json:"window_s"`
	WakeupsPerS float64 `json:"wakeups_per_s"`
	// The spread over the processes: a mean can hide a few busy ones.
	WakeupsPerSMedian float64 `json:"wakeups_per_s_median"`
	WakeupsPerSP90    float64 `json:"wakeups_per_s_p90"`
	CPUMsPerMin       float64 `json:"cpu_ms_per_min"`
	CPUMsPerMinMedian float64 `json:"cpu_ms_per_min_median"`
	PSSMiB            float64 `json:"pss_mib"`
	RSSMiB            float64 `json:"rss_mib"`
	Threads           float64 `json:"threads"`
	Goroutines        float64 `json:"goroutines,omitempty"`
	TunnelsPerProc    int     `json:"tunnels_per_proc"`
}

// treeSample is every root's tree at one moment: each with the time it was
// read, since a pass over a thousand trees takes seconds.
type treeSample struct {
	usage []usage
	at    []time.Time
}

func sampleTrees(roots []int) treeSample {
	s := treeSample{usage: make([]usage, len(roots)), at: make([]time.Time, len(roots))}
	children := childrenOf()
	for i, pid := range roots {
		s.usage[i], s.at[i] = treeUsage(pid, children), time.Now()
	}
	return s
}

// costBetween is the mean per process between two samples of the same
// roots; each process's rates are over its own interval. Memory is the
// later sample's.
func costBetween(before, after treeSample, released time.Time) idleCost {
	var wakePerS, cpuMsPerMin, elapsed float64
	var pss, rss uint64
	threads := 0
	each := make([]float64, len(after.usage))    // wakeups/s of each process
	eachCPU := make([]float64, len(after.usage)) // CPU ms/min of each process
	for i, a := range after.usage {
		b := before.usage[i]
		secs := after.at[i].Sub(before.at[i]).Seconds()
		elapsed += secs
		each[i] = float64(a.wakeups-min(b.wakeups, a.wakeups)) / secs
		wakePerS += each[i]
		cpuMs := float64(a.ticks-min(b.ticks, a.ticks)) * 1000 / clkTck
		if a.cpuNS > 0 {
			cpuMs = float64(a.cpuNS-min(b.cpuNS, a.cpuNS)) / 1e6
		}
		eachCPU[i] = cpuMs / secs * 60
		cpuMsPerMin += eachCPU[i]
		pss += a.pss
		rss += a.rss
		threads += a.threads
	}
	n := float64(len(after.usage))
	slices.Sort(each)
	slices.Sort(eachCPU)
	return idleCost{
		Procs:             len(after.usage),
		StartS:            before.at[0].Sub(released).Seconds(),
		WindowS:           elapsed / n,
		WakeupsPerS:       wakePerS / n,
		WakeupsPerSMedian: each[len(each)/2],
		WakeupsPerSP90:    each[(len(each)*9)/10],
		CPUMsPerMin:       cpuMsPerMin / n,
		CPUMsPerMinMedian: eachCPU[len(eachCPU)/2],
		PSSMiB:            float64(pss) / n / (1 << 20),
		RSSMiB:            float64(rss) / n / (1 << 20),
		Threads:           float64(threads) / n,
	}
}
