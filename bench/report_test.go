package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
)

// metricDef is one row of the table.
type metricDef struct {
	Key    string `json:"key"`
	Label  string `json:"label"`
	Unit   string `json:"unit"`
	Higher bool   `json:"higher_is_better"`
	// Target, if set, is checked on the median of each rtunnel variant.
	Target string                                                  `json:"target,omitempty"`
	check  func(rt float64, peers map[string]float64) (bool, bool) // (met, applicable)
}

// vsBest compares with the best median among the named peers: rt must be
// at least (higher is better) or at most limit times it.
func vsBest(higher bool, limit float64, peers ...string) func(float64, map[string]float64) (bool, bool) {
	return func(rt float64, med map[string]float64) (bool, bool) {
		best, ok := math.NaN(), false
		for _, p := range peers {
			v, have := med[p]
			if !have {
				continue
			}
			if !ok || (higher && v > best) || (!higher && v < best) {
				best, ok = v, true
			}
		}
		if !ok {
			return false, false
		}
		if higher {
			return rt >= limit*best, true
		}
		return rt <= limit*best, true
	}
}

func atMost(v float64) func(float64, map[string]float64) (bool, bool) {
	return func(rt float64, _ map[string]float64) (bool, bool) { return rt <= v, true }
}

func short(cipher string) string { return strings.SplitN(cipher, "@", 2)[0] }

// metricDefs lists the rows in table order.
func metricDefs(conc []int, activeConns, fwdMany int) []metricDef {
	var d []metricDef
	peers := []string{"ssh", "autossh"}
	for _, c := range []string{cipherGCM, cipherChacha} {
		for _, dir := range []direction{hubToRemote, remoteToHub} {
			d = append(d, metricDef{Key: "throughput." + string(dir) + "." + short(c), Label: "throughput " + dirLabel(dir) + " " + short(c),
				Unit: "MiB/s", Higher: true, Target: ">= 1.0x best peer", check: vsBest(true, 1, peers...)})
		}
	}
	for _, c := range []string{cipherGCM, cipherChacha} {
		for _, dir := range []direction{hubToRemote, remoteToHub} {
			d = append(d, metricDef{Key: "cpu." + string(dir) + "." + short(c), Label: "client CPU " + dirLabel(dir) + " " + short(c),
				Unit: "s/GiB", Target: "<= 1.0x best peer", check: vsBest(false, 1, peers...)})
		}
	}
	for _, m := range []struct{ key, label string }{{"b2b", "back-to-back"}, {"gap", "idle gap"}} {
		d = append(d,
			metricDef{Key: "latency." + m.key + ".p50", Label: "setup latency " + m.label + " p50", Unit: "ms"},
			metricDef{Key: "latency." + m.key + ".p99", Label: "setup latency " + m.label + " p99", Unit: "ms",
				Target: "<= 1.0x best peer", check: vsBest(false, 1, peers...)},
			metricDef{Key: "latency." + m.key + ".stalls", Label: "setup latency " + m.label + " cycles >= 30 ms", Unit: "count",
				Target: "0", check: atMost(0)})
	}
	for _, n := range conc {
		wall := metricDef{Key: fmt.Sprintf("concurrency.%d.wall", n), Label: fmt.Sprintf("%d concurrent x 64 KiB echo, wall", n), Unit: "s"}
		fail := metricDef{Key: fmt.Sprintf("concurrency.%d.failures", n), Label: fmt.Sprintf("%d concurrent, failures (all causes)", n), Unit: "count"}
		lost := metricDef{Key: fmt.Sprintf("concurrency.%d.lost", n), Label: fmt.Sprintf("%d concurrent, failures after reaching the remote target", n), Unit: "count"}
		if n >= 1000 {
			wall.Target, wall.check = "<= 1.0x best peer", vsBest(false, 1, peers...)
			lost.Target, lost.check = "0", atMost(0)
		}
		ov := metricDef{Key: fmt.Sprintf("concurrency.%d.overflows", n), Label: fmt.Sprintf("%d concurrent, hub listen-queue overflows (kernel)", n), Unit: "count"}
		d = append(d, wall, fail, lost, ov)
	}
	d = append(d,
		metricDef{Key: "memory.idle1.rss", Label: "idle RSS, 1 forward", Unit: "MB", Target: "<= autossh+ssh", check: vsBest(false, 1, "autossh")},
		metricDef{Key: "memory.idle1.pss", Label: "idle PSS, 1 forward", Unit: "MB"},
		metricDef{Key: "memory.idle1.anon", Label: "idle anonymous memory, 1 forward", Unit: "MB"},
		metricDef{Key: "memory.idleN.rss", Label: fmt.Sprintf("idle RSS, %d forwards", fwdMany), Unit: "MB", Target: "<= autossh+ssh", check: vsBest(false, 1, "autossh")},
		metricDef{Key: "memory.idleN.pss", Label: fmt.Sprintf("idle PSS, %d forwards", fwdMany), Unit: "MB"},
		metricDef{Key: "memory.idleN.anon", Label: fmt.Sprintf("idle anonymous memory, %d forwards", fwdMany), Unit: "MB"},
		metricDef{Key: "memory.active.rss", Label: fmt.Sprintf("RSS with %d connections open", activeConns), Unit: "MB"},
		metricDef{Key: "memory.aftertransfer.rss", Label: fmt.Sprintf("RSS idle again after the %d connections and the aes128-gcm transfers", activeConns), Unit: "MB"},
		metricDef{Key: "recovery", Label: "recovery after hub restart", Unit: "s", Target: "<= autossh", check: vsBest(false, 1, "autossh")},
	)
	return d
}

func dirLabel(d direction) string {
	if d == hubToRemote {
		return "hub->remote"
	}
	return "remote->hub"
}

// Result is what bench/results/*.json holds.
type Result struct {
	Started string            `json:"started"`
	Host    map[string]string `json:"host"`
	Params  map[string]any    `json:"params"`
	Clients []string          `json:"clients"`
	Metrics []MetricResult    `json:"metrics"`
	Notes   []string          `json:"notes,omitempty"`
}

// MetricResult is one row: samples per client (one per repetition), their
// median and spread, and each rtunnel variant's ratio to each peer.
type MetricResult struct {
	metricDef
	Samples map[string][]float64          `json:"samples"`
	Median  map[string]float64            `json:"median"`
	Min     map[string]float64            `json:"min"`
	Max     map[string]float64            `json:"max"`
	Ratio   map[string]map[string]float64 `json:"ratio,omitempty"` // rtunnel variant -> peer -> median ratio
	Met     map[string]bool               `json:"target_met,omitempty"`
}

type collector struct {
	defs    []metricDef
	clients []clientSpec
	samples map[string]map[string][]float64 // key -> client -> samples
}

func newCollector(defs []metricDef, clients []clientSpec) *collector {
	return &collector{defs: defs, clients: clients, samples: map[string]map[string][]float64{}}
}

func (c *collector) add(key, client string, v float64) {
	if c.samples[key] == nil {
		c.samples[key] = map[string][]float64{}
	}
	c.samples[key][client] = append(c.samples[key][client], v)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (c *collector) result() []MetricResult {
	var out []MetricResult
	for _, d := range c.defs {
		m := MetricResult{metricDef: d, Samples: c.samples[d.Key], Median: map[string]float64{}, Min: map[string]float64{}, Max: map[string]float64{}}
		for cl, s := range m.Samples {
			if len(s) == 0 {
				continue
			}
			m.Median[cl] = median(s)
			m.Min[cl] = slices.Min(s)
			m.Max[cl] = slices.Max(s)
		}
		for _, rt := range c.clients {
			if rt.kind != "rtunnel" {
				continue
			}
			v, ok := m.Median[rt.name]
			if !ok {
				continue
			}
			for _, p := range c.clients {
				if p.kind == "rtunnel" {
					continue
				}
				if pv, ok := m.Median[p.name]; ok && pv != 0 {
					if m.Ratio == nil {
						m.Ratio = map[string]map[string]float64{}
					}
					if m.Ratio[rt.name] == nil {
						m.Ratio[rt.name] = map[string]float64{}
					}
					m.Ratio[rt.name][p.name] = v / pv
				}
			}
			if d.check != nil {
				if met, ok := d.check(v, m.Median); ok {
					if m.Met == nil {
						m.Met = map[string]bool{}
					}
					m.Met[rt.name] = met
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// table renders the result as a Markdown table.
func table(res *Result) string {
	var b strings.Builder
	var rts, peers []string
	for _, c := range res.Clients {
		if strings.HasPrefix(c, "rtunnel") {
			rts = append(rts, c)
		} else {
			peers = append(peers, c)
		}
	}
	b.WriteString("| metric | unit |")
	for _, c := range res.Clients {
		fmt.Fprintf(&b, " %s |", c)
	}
	for _, rt := range rts {
		for _, p := range peers {
			fmt.Fprintf(&b, " %s/%s |", rt, p)
		}
	}
	b.WriteString(" target | met |\n|---|---|")
	for range len(res.Clients) + len(rts)*len(peers) {
		b.WriteString("---|")
	}
	b.WriteString("---|---|\n")
	for _, m := range res.Metrics {
		fmt.Fprintf(&b, "| %s | %s |", m.Label, m.Unit)
		for _, c := range res.Clients {
			s := m.Samples[c]
			switch {
			case len(s) == 0:
				b.WriteString(" n/a |")
			case len(s) == 1 || m.Min[c] == m.Max[c]:
				fmt.Fprintf(&b, " %s |", num(m.Median[c]))
			default:
				fmt.Fprintf(&b, " %s (%s–%s) |", num(m.Median[c]), num(m.Min[c]), num(m.Max[c]))
			}
		}
		for _, rt := range rts {
			for _, p := range peers {
				if r, ok := m.Ratio[rt][p]; ok {
					fmt.Fprintf(&b, " %.2f |", r)
				} else {
					b.WriteString(" |")
				}
			}
		}
		fmt.Fprintf(&b, " %s |", m.Target)
		var met []string
		for _, rt := range rts {
			if v, ok := m.Met[rt]; ok {
				s := "yes"
				if !v {
					s = "NO"
				}
				if len(rts) > 1 {
					s = rt + ": " + s
				}
				met = append(met, s)
			}
		}
		fmt.Fprintf(&b, " %s |\n", strings.Join(met, ", "))
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e6:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func writeResult(path string, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
