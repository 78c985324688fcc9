package health

import (
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The Prometheus data model, as much of it as rtunnel exports: a family
// (name, help, type, label names) holds one series per set of label values.
// Updates are atomic adds and stores, so the data path takes no lock; a
// family's lock guards only its map of series (created on AddTunnel,
// deleted on RemoveTunnel, read by a scrape).

// floatBits is a float64 updated atomically.
type floatBits struct{ bits atomic.Uint64 }

func (f *floatBits) load() float64   { return math.Float64frombits(f.bits.Load()) }
func (f *floatBits) store(v float64) { f.bits.Store(math.Float64bits(v)) }

func (f *floatBits) add(v float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// counter only goes up; a negative Add is ignored, as it would break every
// rate() over it.
type counter struct{ v floatBits }

func (c *counter) Inc() { c.v.add(1) }

func (c *counter) Add(v float64) {
	if v > 0 {
		c.v.add(v)
	}
}

// gauge goes up and down.
type gauge struct{ v floatBits }

func (g *gauge) Set(v float64) { g.v.store(v) }
func (g *gauge) Inc()          { g.v.add(1) }
func (g *gauge) Dec()          { g.v.add(-1) }

// histogram counts observations in cumulative buckets with the upper bounds
// of its family; the +Inf bucket is its count.
type histogram struct {
	upper  []float64       // shared with the family, read-only
	counts []atomic.Uint64 // per bucket, not cumulative
	count  atomic.Uint64
	sum    floatBits
}

func (h *histogram) Observe(v float64) {
	if i, _ := slices.BinarySearch(h.upper, v); i < len(h.counts) {
		h.counts[i].Add(1) // the first bucket whose bound is >= v
	}
	h.sum.add(v)
	h.count.Add(1)
}

// family is one metric name with its series, keyed by their label values.
type family[M any] struct {
	name, help, kind string // kind: counter, gauge or histogram
	labels           []string
	order            []int // indices of labels sorted by name: the order a scrape shows them in
	newSeries        func() *M

	mu     sync.Mutex
	series map[string]*labelled[M]
}

type labelled[M any] struct {
	values []string
	m      *M
}

func newFamily[M any](kind, name, help string, labels []string, newSeries func() *M) *family[M] {
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return &family[M]{
		name: name, help: help, kind: kind, labels: labels, order: order, newSeries: newSeries,
		series: map[string]*labelled[M]{},
	}
}

// seriesKey joins label values with a byte that cannot occur in valid UTF-8.
func seriesKey(values []string) string { return strings.Join(values, "\xff") }

// WithLabelValues returns the series for values (one per label, in the
// family's order), creating it at zero. A wrong count of values is a
// programming error and panics, as client_golang's did.
func (f *family[M]) WithLabelValues(values ...string) *M {
	if len(values) != len(f.labels) {
		panic("health: " + f.name + ": wrong number of label values")
	}
	key := seriesKey(values)
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.series[key]; ok {
		return s.m
	}
	s := &labelled[M]{values: slices.Clone(values), m: f.newSeries()}
	f.series[key] = s
	return s.m
}

// DeletePartialMatch deletes every series whose labels include all of
// match (label name -> value) and returns how many it deleted.
func (f *family[M]) DeletePartialMatch(match map[string]string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for key, s := range f.series {
		if f.matches(s.values, match) {
			delete(f.series, key)
			n++
		}
	}
	return n
}

func (f *family[M]) matches(values []string, match map[string]string) bool {
	for name, want := range match {
		i := slices.Index(f.labels, name)
		if i < 0 || values[i] != want {
			return false
		}
	}
	return true
}

// sorted returns the family's series ordered by their label values, taken
// in the order a scrape shows the labels, so a scrape is stable.
func (f *family[M]) sorted() []*labelled[M] {
	f.mu.Lock()
	list := make([]*labelled[M], 0, len(f.series))
	for _, s := range f.series {
		list = append(list, s)
	}
	f.mu.Unlock()
	slices.SortFunc(list, func(a, b *labelled[M]) int {
		for _, i := range f.order {
			if c := strings.Compare(a.values[i], b.values[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	return list
}

func newCounterFamily(name, help string, labels ...string) *family[counter] {
	return newFamily("counter", name, help, labels, func() *counter { return new(counter) })
}

func newGaugeFamily(name, help string, labels ...string) *family[gauge] {
	return newFamily("gauge", name, help, labels, func() *gauge { return new(gauge) })
}

// newHistogramFamily takes bucket upper bounds in increasing order, without
// +Inf.
func newHistogramFamily(name, help string, buckets []float64, labels ...string) *family[histogram] {
	upper := slices.Clone(buckets)
	return newFamily("histogram", name, help, labels, func() *histogram {
		return &histogram{upper: upper, counts: make([]atomic.Uint64, len(upper))}
	})
}
