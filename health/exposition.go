package health

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The Prometheus text exposition format, version 0.0.4, which every
// Prometheus, VictoriaMetrics, Telegraf and blackbox_exporter reads. It is
// written here instead of by client_golang: that library and the protobuf
// runtime it brings were a quarter of the binary (2.7 MB of 10.5 on arm64),
// which the routers and boards of docs/INSTALL.md pay in flash.

// exposition is the content type of the text format.
const exposition = "text/plain; version=0.0.4; charset=utf-8"

// writer is a family that can write itself in the text format; a family
// without series writes nothing, as a scrape of client_golang's did.
type writer interface {
	metricName() string
	writeText(b *bytes.Buffer)
}

// registry holds the families of one Health, written sorted by name.
type registry struct {
	mu       sync.Mutex
	families []writer
}

// add adds families; two with the same name are a programming error.
func (r *registry) add(ws ...writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range ws {
		if slices.ContainsFunc(r.families, func(x writer) bool { return x.metricName() == w.metricName() }) {
			panic("health: metric " + w.metricName() + " registered twice")
		}
		r.families = append(r.families, w)
	}
	slices.SortFunc(r.families, func(a, b writer) int { return strings.Compare(a.metricName(), b.metricName()) })
}

// WriteTo writes every family in the text format.
func (r *registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	families := slices.Clone(r.families)
	r.mu.Unlock()
	var b bytes.Buffer
	for _, f := range families {
		f.writeText(&b)
	}
	return b.WriteTo(w)
}

// ServeHTTP answers a scrape. Gzip is not offered: a scrape of a few
// hundred series is a few KB over loopback or a tunnel.
func (r *registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", exposition)
	_, _ = r.WriteTo(w)
}

func (f *family[M]) metricName() string { return f.name }

func (f *family[M]) writeText(b *bytes.Buffer) {
	list := f.sorted()
	if len(list) == 0 {
		return
	}
	writeHeader(b, f.name, f.help, f.kind)
	for _, s := range list {
		l := labelPairs{f.labels, s.values, f.order}
		switch m := any(s.m).(type) {
		case *counter:
			writeSample(b, f.name, l, "", "", m.v.load())
		case *gauge:
			writeSample(b, f.name, l, "", "", m.v.load())
		case *histogram:
			writeHistogram(b, f.name, l, m)
		}
	}
}

func writeHeader(b *bytes.Buffer, name, help, kind string) {
	b.WriteString("# HELP ")
	b.WriteString(name)
	b.WriteByte(' ')
	helpEscaper.WriteString(b, help)
	b.WriteString("\n# TYPE ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(kind)
	b.WriteByte('\n')
}

// writeHistogram writes the cumulative buckets, then _sum and _count. The
// three reads are not one snapshot: a concurrent Observe may show in the
// count and not yet in a bucket, which Prometheus tolerates (client_golang's
// own snapshots are only eventually consistent too).
func writeHistogram(b *bytes.Buffer, name string, l labelPairs, h *histogram) {
	var cumulative uint64
	for i, upper := range h.upper {
		cumulative += h.counts[i].Load()
		writeSample(b, name+"_bucket", l, "le", formatFloat(upper), float64(cumulative))
	}
	count := h.count.Load()
	writeSample(b, name+"_bucket", l, "le", "+Inf", float64(count))
	writeSample(b, name+"_sum", l, "", "", h.sum.load())
	writeSample(b, name+"_count", l, "", "", float64(count))
}

// labelPairs are a series' label names and values, shown in the order of
// the names (as client_golang did, so that greps and dashboards keep
// matching).
type labelPairs struct {
	names, values []string
	order         []int
}

// writeSample writes one line: name{label="value",...} value, with an
// extra label last (a histogram's le) when extraName is set.
func writeSample(b *bytes.Buffer, name string, l labelPairs, extraName, extraValue string, v float64) {
	b.WriteString(name)
	if len(l.names) > 0 || extraName != "" {
		b.WriteByte('{')
		for n, i := range l.order {
			if n > 0 {
				b.WriteByte(',')
			}
			writeLabel(b, l.names[i], l.values[i])
		}
		if extraName != "" {
			if len(l.names) > 0 {
				b.WriteByte(',')
			}
			writeLabel(b, extraName, extraValue)
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

func writeLabel(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteString(`="`)
	labelEscaper.WriteString(b, value)
	b.WriteByte('"')
}

// The format escapes a backslash and a newline in HELP, and also a double
// quote in a label value.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
