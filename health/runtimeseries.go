package health

import (
	"bytes"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The go_* and process_* series that dashboards and alerts expect of a Go
// daemon, under client_golang's names and meanings, read when scraped. Only
// the ones an operator of rtunnel looks at are kept: goroutines and threads
// (a leak), the GC goal (docs/CONFIG.md's adaptive GOGC), memory, CPU,
// descriptors and the start time (restarts).

// processStart stands in for the kernel's start time of the process; the
// two differ by the milliseconds the runtime takes to reach here.
var processStart = time.Now()

// valueFunc is an unlabelled series whose value is read at each scrape; ok
// false leaves it out of that scrape (e.g. /proc unreadable).
type valueFunc struct {
	name, help, kind string
	read             func() (v float64, ok bool)
}

func (f *valueFunc) metricName() string { return f.name }

func (f *valueFunc) writeText(b *bytes.Buffer) {
	v, ok := f.read()
	if !ok {
		return
	}
	writeHeader(b, f.name, f.help, f.kind)
	writeSample(b, f.name, labelPairs{}, "", "", v)
}

func runtimeSeries() []writer {
	goInfo := newGaugeFamily("go_info", "Information about the Go environment.", "version")
	goInfo.WithLabelValues(runtime.Version()).Set(1)
	return []writer{
		goInfo,
		&valueFunc{"go_goroutines", "Number of goroutines that currently exist.", "gauge", func() (float64, bool) {
			return float64(runtime.NumGoroutine()), true
		}},
		runtimeMetric("go_threads", "Number of OS threads the Go runtime holds.", "gauge", "/sched/threads/total:threads"),
		runtimeMetric("go_gc_gogc_percent", "Heap growth that triggers a GC cycle, as GOGC (or rtunnel's adaptive goal) sets it.", "gauge", "/gc/gogc:percent"),
		runtimeMetric("go_gc_gomemlimit_bytes", "Go runtime memory limit (GOMEMLIMIT).", "gauge", "/gc/gomemlimit:bytes"),
		runtimeMetric("go_gc_cycles_total", "Completed GC cycles.", "counter", "/gc/cycles/total:gc-cycles"),
		runtimeMetric("go_memstats_heap_alloc_bytes", "Bytes of heap objects, live or not yet swept.", "gauge", "/memory/classes/heap/objects:bytes"),
		runtimeMetric("go_memstats_sys_bytes", "Bytes of memory the Go runtime has mapped from the OS.", "gauge", "/memory/classes/total:bytes"),
		&valueFunc{"process_cpu_seconds_total", "User and system CPU time spent, in seconds.", "counter", cpuSeconds},
		&valueFunc{"process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", func() (float64, bool) { return statm(1) }},
		&valueFunc{"process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", func() (float64, bool) { return statm(0) }},
		&valueFunc{"process_open_fds", "Number of open file descriptors.", "gauge", openFDs},
		&valueFunc{"process_max_fds", "Limit on open file descriptors (RLIMIT_NOFILE, soft).", "gauge", maxFDs},
		&valueFunc{"process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.", "gauge", func() (float64, bool) {
			return float64(processStart.UnixNano()) / 1e9, true
		}},
	}
}

// runtimeMetric reads one runtime/metrics value; a name this Go does not
// know leaves the series out.
func runtimeMetric(name, help, kind, runtimeName string) *valueFunc {
	return &valueFunc{name, help, kind, func() (float64, bool) {
		s := []rtmetrics.Sample{{Name: runtimeName}}
		rtmetrics.Read(s)
		switch s[0].Value.Kind() {
		case rtmetrics.KindUint64:
			return float64(s[0].Value.Uint64()), true
		case rtmetrics.KindFloat64:
			return s[0].Value.Float64(), true
		}
		return 0, false
	}}
}

func cpuSeconds() (float64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), true
}

// statm reads field i (0 size, 1 resident) of /proc/self/statm in bytes.
func statm(i int) (float64, bool) {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(raw))
	if len(fields) <= i {
		return 0, false
	}
	pages, err := strconv.ParseUint(fields[i], 10, 64)
	if err != nil {
		return 0, false
	}
	return float64(pages) * float64(os.Getpagesize()), true
}

func openFDs() (float64, bool) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, false
	}
	return float64(len(names) - 1), true // less the descriptor reading the directory
}

func maxFDs() (float64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	return float64(lim.Cur), true
}
