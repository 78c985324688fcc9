package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/rtunnel/rtunnel/config"
)

// Log formats (log.format). auto is the journal when stderr is the
// journal's stream (rtunnel run by systemd), else text.
const (
	formatAuto    = "auto"
	formatText    = "text"
	formatJSON    = "json"
	formatJournal = "journal"
)

func logLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// logOutput is where rtunnel logs. A reload changes its level and format
// in place: every logger made from it, the tunnels' included, follows.
type logOutput struct {
	stderr io.Writer
	level  slog.LevelVar
	root   atomic.Pointer[slog.Handler]

	mu     sync.Mutex // serialises apply
	format string     // as configured, for the log line on a change
	active string     // the format in force after resolving auto

	// The journal, injectable for tests.
	stderrIsJournal func() (bool, error)
	journalUp       func() bool
	journalSend     func(msg string, p journal.Priority, vars map[string]string) error
}

func newLogOutput(stderr io.Writer) *logOutput {
	return &logOutput{stderr: stderr, stderrIsJournal: journal.StderrIsJournalStream,
		journalUp: journal.Enabled, journalSend: journal.Send}
}

// logger returns a logger that writes through whatever handler is in force.
func (o *logOutput) logger() *slog.Logger { return slog.New(&switchHandler{root: &o.root}) }

// apply puts a log section in force: the level at once, the format by
// swapping the handler. It reports the format in force (auto resolved) and
// whether it changed.
func (o *logOutput) apply(c config.Log) (active string, changed bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	format := c.Format
	if format == "" {
		format = formatAuto
	}
	resolved := format
	if format == formatAuto {
		resolved = formatText
		if ok, _ := o.stderrIsJournal(); ok {
			resolved = formatJournal
		}
	}
	var h slog.Handler
	opts := &slog.HandlerOptions{Level: &o.level}
	switch resolved {
	case formatText:
		h = slog.NewTextHandler(o.stderr, opts)
	case formatJSON:
		h = slog.NewJSONHandler(o.stderr, opts)
	case formatJournal:
		jh := &journalHandler{level: &o.level, fallback: o.stderr, mu: &sync.Mutex{}}
		if o.journalUp() {
			jh.send = o.journalSend
		}
		h = jh
	default:
		return o.active, false, fmt.Errorf("format %q: use auto, text, json or journal", c.Format)
	}
	o.level.Set(logLevel(c.Level))
	changed = o.active != "" && (resolved != o.active || format != o.format)
	if o.active == "" || changed {
		o.root.Store(&h)
	}
	o.format, o.active = format, resolved
	return resolved, changed, nil
}

// switchHandler hands each record to the handler in force at that moment,
// with the attributes and groups its logger was made with.
type switchHandler struct {
	root   *atomic.Pointer[slog.Handler]
	derive []func(slog.Handler) slog.Handler // WithAttrs and WithGroup, in order
}

func (h *switchHandler) current() slog.Handler {
	cur := *h.root.Load()
	for _, d := range h.derive {
		cur = d(cur)
	}
	return cur
}

func (h *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return (*h.root.Load()).Enabled(ctx, l)
}

func (h *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

func (h *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &switchHandler{root: h.root, derive: append(slices.Clip(h.derive), func(x slog.Handler) slog.Handler { return x.WithAttrs(as) })}
}

func (h *switchHandler) WithGroup(name string) slog.Handler {
	return &switchHandler{root: h.root, derive: append(slices.Clip(h.derive), func(x slog.Handler) slog.Handler { return x.WithGroup(name) })}
}
