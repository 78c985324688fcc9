package fleet

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// blackboxConfig is Debian's prometheus-blackbox-exporter configuration,
// whose ssh_banner module the fleet view relies on as shipped.
const blackboxConfig = "/etc/prometheus/blackbox.yml"

// TestFleetView is the fleet seen from the hub, as docs/FLEET.md sets it
// up: every remote forwards its sshd and its rtunnel's /metrics to the hub
// (the key line from `authorized-key --metrics-port`), `rtunnel
// fleet-targets` turns the inventory into file_sd targets, and a real
// Prometheus with deploy/prometheus/fleet.prometheus.yml and a real
// blackbox_exporter scrape and probe through the tunnels. The test asks
// Prometheus for the dashboard's own fleet queries: every remote reachable
// and its tunnel up; then one remote's rtunnel is killed and both go to 0
// for it alone.
func TestFleetView(t *testing.T) {
	sshdtest.RequireTools(t, "prometheus", "prometheus-blackbox-exporter")
	if _, err := os.Stat(blackboxConfig); err != nil {
		sshdtest.RequireTools(t, blackboxConfig+"-from-the-prometheus-blackbox-exporter-package")
	}
	const n = 4
	dir := t.TempDir()
	h := newHub(t, dir)
	// One real sshd stands in for every remote's own sshd.
	remoteSSHD := sshdtest.Start(t, sshdtest.Options{Name: "remotes-sshd", NetNS: h.ns, ListenAddr: "127.0.0.1", Port: 2200})
	rs := newRemotes(t, h, dir, n, true)
	var inventory strings.Builder
	for _, r := range rs {
		r.target = remoteSSHD.Addr
		fmt.Fprintf(&inventory, "%s %d %d\n", r.name, r.port, r.metricsForward)
	}
	cs, release := startFleet(t, h, dir, kindRtunnel, rs)
	release()

	inv := filepath.Join(dir, "fleet.txt")
	sd := filepath.Join(dir, "file_sd")
	if err := os.WriteFile(inv, []byte(inventory.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(rtunnelBinary(t), "fleet-targets", "--inventory", inv, "--out", sd, "--hub", "hub-a").CombinedOutput(); err != nil {
		t.Fatalf("rtunnel fleet-targets: %v\n%s", err, out)
	}

	logs := filepath.Join(dir, "logs")
	promCfg := hubPrometheusConfig(t, dir, sd)
	daemons := []*client{
		startClient(t, logs, "blackbox_exporter", []string{"ip", "netns", "exec", h.ns, "prometheus-blackbox-exporter",
			"--config.file=" + blackboxConfig, "--web.listen-address=127.0.0.1:9115"}, nil),
		startClient(t, logs, "prometheus", []string{"ip", "netns", "exec", h.ns, "prometheus",
			"--config.file=" + promCfg, "--storage.tsdb.path=" + filepath.Join(dir, "tsdb"),
			"--web.listen-address=127.0.0.1:9090"}, nil),
	}
	t.Cleanup(func() {
		stopClients(t, daemons)
		if t.Failed() {
			for _, d := range daemons {
				if b, err := os.ReadFile(d.log); err == nil {
					t.Logf("%s log:\n%s", d.name, tail(string(b), 30))
				}
			}
		}
	})

	reachable := dashboardQuery(t, "Fleet: sshd reachable through the tunnel, per remote")
	tunnelUp := dashboardQuery(t, "Fleet: tunnel up per remote, seen from the hub")
	byHub := dashboardQuery(t, "Fleet: remotes reachable, by hub")
	all := func(v float64) map[string]float64 {
		m := map[string]float64{}
		for _, r := range rs {
			m[r.name] = v
		}
		return m
	}
	p := &promAPI{ns: h.ns}
	p.waitFor(t, reachable, all(1), 90*time.Second)
	p.waitFor(t, tunnelUp, all(1), 30*time.Second)
	p.waitFor(t, byHub, map[string]float64{"hub=hub-a": n}, 10*time.Second)

	victim := rs[2]
	_ = syscall.Kill(-cs[2].pid, syscall.SIGKILL)
	want := all(1)
	want[victim.name] = 0
	p.waitFor(t, reachable, want, 30*time.Second)
	p.waitFor(t, tunnelUp, want, 30*time.Second)
	p.waitFor(t, byHub, map[string]float64{"hub=hub-a": n - 1}, 10*time.Second)
}

// hubPrometheusConfig is deploy/prometheus/fleet.prometheus.yml with its
// paths pointed into dir and a 1 s scrape interval.
func hubPrometheusConfig(t *testing.T, dir, sd string) string {
	t.Helper()
	b, err := os.ReadFile("../deploy/prometheus/fleet.prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs("../deploy/prometheus/rtunnel.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("/etc/prometheus/rtunnel-fleet", sd, "/etc/prometheus/rtunnel.rules.yml", rules,
		"scrape_interval: 15s", "scrape_interval: 1s", "evaluation_interval: 15s", "evaluation_interval: 1s").Replace(string(b))
	if cfg == string(b) || !strings.Contains(cfg, sd) {
		t.Fatal("fleet.prometheus.yml: its file_sd paths or intervals changed; update this test")
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dashboardQuery returns the first query of the dashboard panel titled so.
func dashboardQuery(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile("../deploy/grafana/rtunnel.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		if p.Title == title && len(p.Targets) > 0 {
			return p.Targets[0].Expr
		}
	}
	t.Fatalf("deploy/grafana/rtunnel.json has no panel %q", title)
	return ""
}

// promAPI queries the Prometheus in the hub's namespace.
type promAPI struct{ ns string }

// query returns the instant vector of expr by its remote label, or as
// "hub=NAME" for a series without one.
func (p *promAPI) query(expr string) (map[string]float64, error) {
	resp, err := nsHTTP(p.ns).Get("http://127.0.0.1:9090/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", expr, r.Error)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		v, _ := s.Value[1].(string)
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v", expr, s.Value[1])
		}
		key := s.Metric["remote"]
		if key == "" {
			key = "hub=" + s.Metric["hub"]
		}
		out[key] = f
	}
	return out, nil
}

// waitFor polls (every 500 ms, bounded) until expr gives exactly want.
func (p *promAPI) waitFor(t *testing.T, expr string, want map[string]float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got map[string]float64
	var err error
	for time.Now().Before(deadline) {
		if got, err = p.query(expr); err == nil && equalValues(got, want) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("Prometheus: %s\n  gave %v (err %v) for %v; want %v", expr, got, err, timeout, want)
}

func equalValues(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
