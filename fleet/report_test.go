package fleet

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// result is one `make fleet` run, as written to bench/results/.
type result struct {
	Date    string     `json:"date"`
	Commit  string     `json:"commit"`
	Client  clientKind `json:"client"`
	N       int        `json:"n"`
	Machine machine    `json:"machine"`
	OutageS float64    `json:"outage_s"`
	// Silent: the reboot was a power cut (the clients heard nothing).
	Silent bool `json:"reboot_silent,omitempty"`
	// MaxStartups is the hub's setting.
	MaxStartups string `json:"hub_maxstartups"`
	Cold        phase  `json:"cold_start"`
	Reboot      phase  `json:"reboot"`
	// Idle is the steady state, from a keepalive interval after the last
	// forward came up; IdleAfterStart the same length of time from the end
	// of the cold start.
	Idle           idleCost `json:"idle"`
	IdleAfterStart idleCost `json:"idle_after_start"`
	Hub            hubCost  `json:"hub"`
	// OneProcess is the same N tunnels in one rtunnel process.
	OneProcess *onePhase `json:"one_process,omitempty"`
}

type machine struct {
	CPUs     int    `json:"cpus"`
	Kernel   string `json:"kernel"`
	OpenSSH  string `json:"openssh"`
	LoadAvg  string `json:"loadavg_at_start"`
	Go       string `json:"go"`
	SharedBy string `json:"note"`
}

// phase is one ramp of forwards coming up and what the hub did meanwhile.
type phase struct {
	Ramp          ramp      `json:"ramp"`
	Hub           hubCounts `json:"hub"`
	SessionsLive  int       `json:"sessions_live"`
	SYNsWhileDown int       `json:"syns_while_down,omitempty"`
	SYNsPerClient float64   `json:"syns_per_client,omitempty"`
	// Kernel is what the hub's kernel dropped or took by SYN cookie.
	Kernel kernelCounts `json:"hub_kernel"`
	// ClientAttempts is the clients' connect attempts by result (rtunnel).
	ClientAttempts attemptCounts `json:"client_attempts,omitempty"`
	// ClientErrors is what the clients logged for retries other than busy
	// and refused ones (at info level: the first of a kind in an outage).
	ClientErrors map[string]int `json:"client_errors,omitempty"`
}

type hubCost struct {
	Processes        int     `json:"sshd_processes"`
	Sessions         int     `json:"sessions"`
	PSSPerProcessMiB float64 `json:"pss_per_process_mib"`
	PSSPerSessionMiB float64 `json:"pss_per_session_mib"`
}

type onePhase struct {
	Cold                phase    `json:"cold_start"`
	Idle                idleCost `json:"idle"`
	IdleAfterStart      idleCost `json:"idle_after_start"`
	RSSPerTunnelKiB     float64  `json:"rss_per_added_tunnel_kib"`
	GoroutinesPerTunnel float64  `json:"goroutines_per_added_tunnel"`
}

func newResult(t *testing.T, o fleetOptions) *result {
	r := &result{Date: time.Now().UTC().Format(time.RFC3339), Client: o.kind, N: o.n, OutageS: o.outage.Seconds(), Silent: o.silent,
		MaxStartups: *flagMaxStartups}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		r.Commit = strings.TrimSpace(string(out))
	}
	r.Machine.CPUs = runtime.NumCPU()
	r.Machine.Go = runtime.Version()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Machine.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.Machine.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if out, err := exec.Command("ssh", "-V").CombinedOutput(); err == nil {
		r.Machine.OpenSSH = strings.TrimSpace(strings.SplitN(string(out), ",", 2)[0])
	}
	r.Machine.SharedBy = "hub, clients and harness on the same machine; other jobs may share its CPUs"
	return r
}

// table is the result as a Markdown table, one row per figure.
func (r *result) table() string {
	var b strings.Builder
	secs := func(v float64) string {
		if v < 0 {
			return "never"
		}
		return fmt.Sprintf("%.1f s", v)
	}
	ramp := func(p ramp) string {
		return fmt.Sprintf("%s / %s / %s (%d of %d)", secs(p.P50), secs(p.P90), secs(p.P100), p.Up, p.Of)
	}
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	fmt.Fprintf(&b, "| %s, N=%d, MaxStartups %s (%s, commit %s) | |\n|---|---|\n", r.Client, r.N, r.MaxStartups, r.Date, r.Commit)
	row("cold start: 50 / 90 / 100 % of forwards up", ramp(r.Cold.Ramp))
	row("cold start: sshd forks, logins, MaxStartups drops, wasted children", hubRow(r.Cold.Hub))
	row("cold start: hub kernel listen overflows, SYN cookies sent / received", kernelRow(r.Cold.Kernel))
	how := ""
	if r.Silent {
		how = ", silent: a power cut"
	}
	row(fmt.Sprintf("reboot (down %.0f s%s): 50 / 90 / 100 %% back after sshd returns", r.OutageS, how), ramp(r.Reboot.Ramp))
	row("reboot: sshd forks, logins, MaxStartups drops, wasted children", hubRow(r.Reboot.Hub))
	row("reboot: hub kernel listen overflows, SYN cookies sent / received", kernelRow(r.Reboot.Kernel))
	if r.Cold.ClientAttempts != nil {
		row("clients' connect attempts by result: cold start; reboot", fmt.Sprintf("%s; %s", countsRow(r.Cold.ClientAttempts), countsRow(r.Reboot.ClientAttempts)))
	}
	if r.Cold.ClientErrors != nil || r.Reboot.ClientErrors != nil {
		row("clients' logged retry errors (not busy or refused): cold start; reboot", fmt.Sprintf("%s; %s", countsRow(r.Cold.ClientErrors), countsRow(r.Reboot.ClientErrors)))
	}
	row("sessions live after cold start / after reboot", fmt.Sprintf("%d / %d", r.Cold.SessionsLive, r.Reboot.SessionsLive))
	row("SYNs to port 22 while sshd was down (total, per client)", fmt.Sprintf("%d, %.1f", r.Reboot.SYNsWhileDown, r.Reboot.SYNsPerClient))
	row("idle per process, steady: wakeups/s (median, p90), CPU ms/min (median), PSS, threads", idleRow(r.Idle))
	row("idle per process, right after the start: wakeups/s (median, p90), CPU ms/min (median), PSS, threads", idleRow(r.IdleAfterStart))
	row("hub: sshd processes, PSS per process, PSS per session", fmt.Sprintf("%d, %.2f MiB, %.2f MiB", r.Hub.Processes, r.Hub.PSSPerProcessMiB, r.Hub.PSSPerSessionMiB))
	if o := r.OneProcess; o != nil {
		row(fmt.Sprintf("one process, %d tunnels: 50 / 90 / 100 %% up", r.N), ramp(o.Cold.Ramp))
		row("one process: sshd forks, logins, MaxStartups drops, wasted children", hubRow(o.Cold.Hub))
		row("one process idle, steady: wakeups/s (median, p90), CPU ms/min (median), PSS, threads", idleRow(o.Idle))
		row("one process idle, right after the start: wakeups/s (median, p90), CPU ms/min (median), PSS, threads", idleRow(o.IdleAfterStart))
		row("one process: RSS and goroutines per added tunnel", fmt.Sprintf("%.0f KiB, %.1f (%.0f goroutines in all)", o.RSSPerTunnelKiB, o.GoroutinesPerTunnel, o.Idle.Goroutines))
	}
	return b.String()
}

func hubRow(c hubCounts) string {
	return fmt.Sprintf("%d, %d, %d, %d", c.Forks, c.Logins, c.Drops, c.Wasted)
}

func countsRow(a map[string]int) string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, a[k])
	}
	return strings.Join(parts, ", ")
}

func kernelRow(k kernelCounts) string {
	return fmt.Sprintf("%d, %d / %d", k.ListenOverflows, k.SyncookiesSent, k.SyncookiesRecv)
}

func idleRow(c idleCost) string {
	return fmt.Sprintf("%.2f (%.2f, %.2f), %.2f (%.2f), %.2f MiB, %.1f (%.0f s from %.0f s after the start)",
		c.WakeupsPerS, c.WakeupsPerSMedian, c.WakeupsPerSP90, c.CPUMsPerMin, c.CPUMsPerMinMedian, c.PSSMiB, c.Threads, c.WindowS, c.StartS)
}

// write stores the result as DIR/fleet-DATE-CLIENT-nN.json.
func (r *result) write(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stamp := strings.NewReplacer(":", "", "-", "").Replace(r.Date)
	path := filepath.Join(dir, fmt.Sprintf("fleet-%s-%s-n%d.json", stamp, r.Client, r.N))
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// raiseFileLimit lifts this process's open-file limit as far as it may
// (to 65536 when the hard limit can be raised): the clients, sshd and its
// children inherit it.
func raiseFileLimit(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	want := syscall.Rlimit{Cur: max(old.Max, 65536), Max: max(old.Max, 65536)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return
	}
	// A container may forbid raising the hard limit: take what it allows.
	want = syscall.Rlimit{Cur: old.Max, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		t.Logf("open-file limit stays %d: %v", old.Cur, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
