package health

import (
	"bytes"
	"math"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// TestTextFormat pins the exact bytes of the text format: families sorted
// by name, series by label values, escapes in HELP and label values,
// cumulative buckets ending in +Inf, _sum and _count, and nothing at all
// for a family without series.
func TestTextFormat(t *testing.T) {
	reg := &registry{}
	c := register(reg, newCounterFamily("b_total", "A counter.\nSecond line with a \\.", "tunnel", "result"))
	c.WithLabelValues("z", "ok").Add(3)
	c.WithLabelValues(`a"q\`+"\n", "ok").Inc()
	c.WithLabelValues("z", "ok").Add(-5) // ignored: a counter never goes down
	g := register(reg, newGaugeFamily("a_gauge", "A gauge."))
	g.WithLabelValues().Set(1.5)
	g.WithLabelValues().Dec()
	register(reg, newGaugeFamily("c_empty", "Never written.", "tunnel"))
	h := register(reg, newHistogramFamily("d_seconds", "A histogram.", []float64{1, 2.5}, "tunnel"))
	for _, v := range []float64{0.5, 1, 1.5, 3} { // 1 is in le="1": the bound is inclusive
		h.WithLabelValues("x").Observe(v)
	}
	register(reg, newGaugeFamily("e_inf", "Infinities.", "sign")).WithLabelValues("+").Set(math.Inf(1))

	var b bytes.Buffer
	if _, err := reg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP a_gauge A gauge.
# TYPE a_gauge gauge
a_gauge 0.5
# HELP b_total A counter.\nSecond line with a \\.
# TYPE b_total counter
b_total{result="ok",tunnel="a\"q\\\n"} 1
b_total{result="ok",tunnel="z"} 3
# HELP d_seconds A histogram.
# TYPE d_seconds histogram
d_seconds_bucket{tunnel="x",le="1"} 2
d_seconds_bucket{tunnel="x",le="2.5"} 3
d_seconds_bucket{tunnel="x",le="+Inf"} 4
d_seconds_sum{tunnel="x"} 6
d_seconds_count{tunnel="x"} 4
# HELP e_inf Infinities.
# TYPE e_inf gauge
e_inf{sign="+"} +Inf
`
	if got := b.String(); got != want {
		t.Errorf("text format:\n%s\nwant:\n%s", got, want)
	}
}

func TestDeletePartialMatch(t *testing.T) {
	f := newCounterFamily("x_total", "x", "tunnel", "forward")
	f.WithLabelValues("a", "1").Inc()
	f.WithLabelValues("a", "2").Inc()
	f.WithLabelValues("b", "1").Inc()
	if n := f.DeletePartialMatch(map[string]string{"tunnel": "a", "forward": "2"}); n != 1 {
		t.Errorf("deleted %d series for a/2, want 1", n)
	}
	if n := f.DeletePartialMatch(map[string]string{"tunnel": "a"}); n != 1 {
		t.Errorf("deleted %d series for tunnel a, want 1", n)
	}
	if n := f.DeletePartialMatch(map[string]string{"nosuchlabel": "b"}); n != 0 {
		t.Errorf("deleted %d series for an unknown label, want 0", n)
	}
	var left []string
	for _, s := range f.sorted() {
		left = append(left, strings.Join(s.values, "/"))
	}
	if strings.Join(left, " ") != "b/1" {
		t.Errorf("series left: %q, want [b/1]", left)
	}
	if c := f.WithLabelValues("a", "1"); c.v.load() != 0 {
		t.Errorf("a deleted series came back at %g, want 0", c.v.load())
	}
}

// TestConcurrentUpdatesAddUp checks that the lock-free adds lose nothing
// (and, under -race, that they are race-free beside a scrape).
func TestConcurrentUpdatesAddUp(t *testing.T) {
	reg := &registry{}
	c := register(reg, newCounterFamily("n_total", "n", "tunnel")).WithLabelValues("t")
	h := register(reg, newHistogramFamily("h_seconds", "h", []float64{1}, "tunnel")).WithLabelValues("t")
	const workers, each = 4, 1000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				c.Add(0.5)
				h.Observe(2)
			}
		})
	}
	wg.Go(func() {
		var b bytes.Buffer
		_, _ = reg.WriteTo(&b)
	})
	wg.Wait()
	if got := c.v.load(); got != workers*each*0.5 {
		t.Errorf("counter = %g, want %g", got, float64(workers*each)*0.5)
	}
	if got := h.count.Load(); got != workers*each {
		t.Errorf("histogram count = %d, want %d", got, workers*each)
	}
	if got := h.sum.load(); got != workers*each*2 {
		t.Errorf("histogram sum = %g, want %d", got, workers*each*2)
	}
}

// TestScrapePassesPromtool hands a full scrape (every rtunnel_* family with
// series, the runtime series, odd characters in names) to Prometheus's own
// parser and linter.
func TestScrapePassesPromtool(t *testing.T) {
	sshdtest.RequireTools(t, "promtool")
	h, srv := newTestHealth(t)
	odd := `t"un\nel`
	h.AddTunnel(odd, []string{fwSSH, fwWeb})
	h.ConnectAttempt(odd)
	h.ConnectResult(odd, "ok")
	h.Connected(odd)
	h.HubInUse(odd, "hub-a", []string{"hub-a", "hub-b"})
	h.KeepaliveRTT(odd, 7*time.Millisecond)
	h.KeepaliveMissed(odd)
	h.ForwardUp(odd, fwSSH)
	h.ConnOpened(odd, fwSSH)
	h.Bytes(odd, fwSSH, "in", 1234)
	h.ConnRejected(odd, fwWeb, "max_connections")
	h.ConnRejected(odd, "undeclared", "local_dial")

	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != exposition {
		t.Errorf("Content-Type %q, want %q", ct, exposition)
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`rtunnel_tunnel_up{tunnel="t\"un\\nel"} 1`,
		`rtunnel_bytes_total{direction="in",forward="` + fwSSH + `",tunnel="t\"un\\nel"} 1234`,
		`rtunnel_keepalive_rtt_seconds_bucket{tunnel="t\"un\\nel",le="0.01"} 1`,
		"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "\nprocess_resident_memory_bytes ",
	} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(body.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s\nscrape:\n%s", err, out, body.String())
	}
}
