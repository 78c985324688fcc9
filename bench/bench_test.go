package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// params sizes one run.
type params struct {
	size        int64         // bytes per throughput transfer
	reps        int           // repetitions of every workload per client
	latCycles   int           // connect-send-receive-close cycles per latency run
	latGap      time.Duration // idle gap between cycles in the "gap" run
	conc        []int         // concurrent connection counts
	concSize    int           // bytes echoed per concurrent connection
	activeConns int           // connections held open while RSS is read
	fwdMany     int           // forwards in the "many forwards" idle memory run
	settle      time.Duration // wait before reading idle memory
	down        time.Duration // how long the hub stays down in the recovery run
	verify      string        // "sha256" or "crc32c"
	clients     []clientSpec
	only        map[string]bool // workloads to run; empty = all
}

func (p params) runs(w string) bool { return len(p.only) == 0 || p.only[w] }

func fullParams(t *testing.T) params {
	t.Helper()
	p := params{
		size: gib, reps: 3, latCycles: 300, latGap: 50 * time.Millisecond,
		conc: []int{200, 1000}, concSize: 64 << 10, activeConns: 200, fwdMany: 100,
		settle: 2 * time.Second, down: 2 * time.Second, verify: "crc32c",
	}
	if v := os.Getenv("RTUNNEL_BENCH_SIZE"); v != "" {
		n, err := parseSize(v)
		if err != nil {
			t.Fatalf("RTUNNEL_BENCH_SIZE: %v", err)
		}
		p.size = n
	}
	if v := os.Getenv("RTUNNEL_BENCH_REPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RTUNNEL_BENCH_REPS=%q: want a positive integer", v)
		}
		p.reps = n
	}
	if v := os.Getenv("RTUNNEL_BENCH_VERIFY"); v != "" {
		if v != "sha256" && v != "crc32c" {
			t.Fatalf("RTUNNEL_BENCH_VERIFY=%q: want sha256 or crc32c", v)
		}
		p.verify = v
	}
	spec := "rtunnel,ssh,autossh"
	if v := os.Getenv("RTUNNEL_BENCH_CLIENTS"); v != "" {
		spec = v
	}
	cl, err := parseClients(spec)
	if err != nil {
		t.Fatalf("RTUNNEL_BENCH_CLIENTS: %v", err)
	}
	p.clients = cl
	if v := os.Getenv("RTUNNEL_BENCH_ONLY"); v != "" {
		p.only = map[string]bool{}
		for _, w := range strings.Split(v, ",") {
			p.only[strings.TrimSpace(w)] = true
		}
	}
	return p
}

// parseSize reads "1GiB", "256MiB", "4KiB" or a byte count.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", gib}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a size such as 1GiB, 256MiB or 1048576", s)
	}
	return n * mult, nil
}

// TestBench is `make bench`: full sizes, every client, table and JSON.
func TestBench(t *testing.T) {
	if os.Getenv("RTUNNEL_BENCH") != "1" {
		t.Skip("set RTUNNEL_BENCH=1 (make bench) to run the benchmark")
	}
	sshdtest.Require(t)
	// Measure the binary `make build` ships: static, no cgo. Under this
	// machine's kernel a mapped executable and its libraries are resident in
	// full, so libc and ld.so alone would add 1.5 MB of RSS.
	t.Setenv("CGO_ENABLED", "0")
	p := fullParams(t)
	for _, c := range p.clients {
		if c.kind == "autossh" {
			sshdtest.RequireTools(t, "autossh")
		}
	}
	res := run(t, p)
	if err := os.MkdirAll("results", 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("results", time.Now().Format("2006-01-02T150405")+".json")
	if err := writeResult(path, res); err != nil {
		t.Fatal(err)
	}
	out := table(res)
	fmt.Println(out)
	t.Logf("wrote %s\n%s", path, out)
}

// TestBenchSmoke runs the bench's code with tiny sizes and checks only that
// it works: bytes arrive intact, every client yields numbers, the JSON reads
// back. Ratios are never asserted here.
func TestBenchSmoke(t *testing.T) {
	sshdtest.Require(t)
	sshdtest.RequireTools(t, "autossh")
	clients, _ := parseClients("rtunnel,ssh,autossh")
	p := params{
		size: 4 << 20, reps: 1, latCycles: 20, latGap: 5 * time.Millisecond,
		conc: []int{20}, concSize: 64 << 10, activeConns: 20, fwdMany: 5,
		settle: 100 * time.Millisecond, down: 300 * time.Millisecond, verify: "sha256",
		clients: clients,
	}
	res := run(t, p)
	path := filepath.Join(t.TempDir(), "result.json")
	if err := writeResult(path, res); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("result JSON does not parse: %v", err)
	}
	if len(back.Metrics) != len(res.Metrics) {
		t.Fatalf("result JSON has %d metrics, want %d", len(back.Metrics), len(res.Metrics))
	}
	for _, m := range back.Metrics {
		for _, c := range p.clients {
			s, ok := m.Samples[c.name]
			if m.Key == "recovery" && c.kind == "ssh" {
				if ok {
					t.Errorf("%s: ssh has recovery samples %v, but it does not reconnect", m.Key, s)
				}
				continue
			}
			if len(s) != p.reps {
				t.Errorf("%s: %s has %d samples, want %d", m.Key, c.name, len(s), p.reps)
				continue
			}
			for _, v := range s {
				var bad bool
				switch {
				case strings.HasSuffix(m.Key, ".overflows"):
					bad = v < 0
				case strings.HasSuffix(m.Key, ".lost"):
					bad = v != 0
				case strings.HasSuffix(m.Key, ".failures") || strings.HasSuffix(m.Key, ".stalls"):
					// Failures must be zero; stalls are a measurement, not a correctness check.
					bad = v < 0 || (strings.HasSuffix(m.Key, ".failures") && v != 0)
				case strings.HasPrefix(m.Key, "cpu."):
					// 4 MiB can take less than one 10 ms clock tick.
					bad = v < 0
				default:
					bad = !(v > 0)
				}
				if bad {
					t.Errorf("%s: %s measured %v", m.Key, c.name, v)
				}
			}
		}
	}
	t.Logf("smoke table (tiny sizes, not a measurement):\n%s", table(res))
}

// run measures every client, repetition by repetition, so that slow drift
// of a noisy machine spreads over all clients alike.
func run(t *testing.T, p params) *Result {
	t.Helper()
	w := newWorld(t, p.verify)
	col := newCollector(metricDefs(p.conc, p.activeConns, p.fwdMany), p.clients)
	started := time.Now()
	for rep := range p.reps {
		for _, c := range p.clients {
			t.Logf("rep %d/%d: %s", rep+1, p.reps, c.name)
			measureClient(t, w, p, c, col)
			if t.Failed() {
				t.FailNow()
			}
		}
	}
	res := &Result{
		Started: started.UTC().Format(time.RFC3339),
		Host:    hostInfo(),
		Params: map[string]any{
			"size_bytes": p.size, "reps": p.reps, "latency_cycles": p.latCycles, "latency_gap": p.latGap.String(),
			"concurrency": p.conc, "concurrency_bytes": p.concSize, "active_conns": p.activeConns,
			"many_forwards": p.fwdMany, "idle_settle": p.settle.String(), "hub_down": p.down.String(), "verify": p.verify,
			"duration": time.Since(started).Round(time.Second).String(),
		},
		Metrics: col.result(),
		Notes: []string{
			"ssh does not reconnect: after the hub restart it has exited, so it has no recovery figure",
			"autossh runs with -M 0 and AUTOSSH_GATETIME=0; its figures are autossh and ssh together",
		},
	}
	for _, c := range p.clients {
		res.Clients = append(res.Clients, c.name)
	}
	return res
}

// measureClient runs every workload once for one client.
func measureClient(t *testing.T, w *world, p params, c clientSpec, col *collector) {
	t.Helper()
	gcm := w.hubs[cipherGCM]
	needGCM := p.runs("memory") || p.runs("throughput") || p.runs("latency") || p.runs("concurrency")
	if needGCM {
		r := w.start(t, c, gcm, 1)
		if p.runs("memory") {
			time.Sleep(p.settle)
			addIdleMem(col, "memory.idle1", c.name, treeMem(r.pid))
			cr := concurrent(r, w.target, w.pat, p.activeConns, p.concSize, func() {
				col.add("memory.active.rss", c.name, treeMem(r.pid).rss/1e6)
			})
			if cr.failures > 0 {
				t.Errorf("%s: %d of %d held connections failed, first: %v", c.name, cr.failures, p.activeConns, cr.firstErr)
			}
		}
		if p.runs("throughput") {
			measureThroughput(t, w, p, c, r, col)
			if p.runs("memory") {
				// What the 200 connections above and the transfers leave
				// resident once the client is idle again (rtunnel lowers
				// its GC goal and collects on its next 1 s tick).
				time.Sleep(p.settle + time.Second)
				col.add("memory.aftertransfer.rss", c.name, treeMem(r.pid).rss/1e6)
			}
		}
		if p.runs("latency") {
			for _, m := range []struct {
				key string
				gap time.Duration
			}{{"b2b", 0}, {"gap", p.latGap}} {
				lr, err := latency(r, p.latCycles, m.gap)
				if err != nil {
					t.Errorf("%s latency %s: %v", c.name, m.key, err)
					continue
				}
				col.add("latency."+m.key+".p50", c.name, lr.p50)
				col.add("latency."+m.key+".p99", c.name, lr.p99)
				col.add("latency."+m.key+".stalls", c.name, float64(lr.stalls))
			}
		}
		if p.runs("concurrency") {
			for _, n := range p.conc {
				ov0, _ := listenOverflows()
				cr := concurrent(r, w.target, w.pat, n, p.concSize, nil)
				ov1, _ := listenOverflows()
				if cr.failures > 0 {
					t.Logf("%s: %d of %d concurrent connections failed (listen overflows meanwhile: %d), first: %v", c.name, cr.failures, n, ov1-ov0, cr.firstErr)
				}
				col.add(fmt.Sprintf("concurrency.%d.overflows", n), c.name, float64(ov1-ov0))
				col.add(fmt.Sprintf("concurrency.%d.wall", n), c.name, cr.wall)
				col.add(fmt.Sprintf("concurrency.%d.failures", n), c.name, float64(cr.failures))
				col.add(fmt.Sprintf("concurrency.%d.lost", n), c.name, float64(cr.lost))
			}
		}
		r.stop()
	}
	if p.runs("throughput") {
		r := w.start(t, c, w.hubs[cipherChacha], 1)
		measureThroughput(t, w, p, c, r, col)
		r.stop()
	}
	if p.runs("memory") {
		r := w.start(t, c, gcm, p.fwdMany)
		time.Sleep(p.settle)
		addIdleMem(col, "memory.idleN", c.name, treeMem(r.pid))
		r.stop()
	}
	if p.runs("recovery") && c.kind != "ssh" {
		r := w.start(t, c, w.hubs["recovery"], 1)
		sec, err := recovery(t, r, p.down)
		if err != nil {
			t.Errorf("%s recovery: %v\nclient log:\n%s", c.name, err, r.log())
		} else {
			col.add("recovery", c.name, sec)
		}
		r.stop()
	}
}

// addIdleMem records an idle client's memory, in MB, under key.rss, .pss and
// .anon.
func addIdleMem(col *collector, key, client string, m mem) {
	col.add(key+".rss", client, m.rss/1e6)
	col.add(key+".pss", client, m.pss/1e6)
	col.add(key+".anon", client, m.anon/1e6)
}

func measureThroughput(t *testing.T, w *world, p params, c clientSpec, r *running, col *collector) {
	t.Helper()
	for _, dir := range []direction{hubToRemote, remoteToHub} {
		mibps, cpu, err := throughput(r, w.pat, p.size, p.verify, dir)
		if err != nil {
			t.Errorf("%s throughput %s %s: %v\nclient log:\n%s", c.name, dir, r.hub.cipher, err, r.log())
			continue
		}
		col.add("throughput."+string(dir)+"."+short(r.hub.cipher), c.name, mibps)
		col.add("cpu."+string(dir)+"."+short(r.hub.cipher), c.name, cpu)
		traceThroughput(t, w, p, c, r, dir)
	}
}

func hostInfo() map[string]string {
	h := map[string]string{"go": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU()), "goarch": runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				h["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("ssh", "-V").CombinedOutput(); err == nil {
		h["ssh"] = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		h["rtunnel"] = strings.TrimSpace(string(out))
	}
	return h
}
