package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// journalHandler logs through the journal's native protocol: PRIORITY from
// the level, so that `journalctl -p warning` finds rtunnel's warnings, and
// every attribute as a field of its own (TUNNEL=, SERVER=, FORWARD=,
// RESULT=, ERR=...), so that `journalctl TUNNEL=hub` finds one tunnel's
// lines. MESSAGE holds the message and the attributes as key=value, as a
// reader of `journalctl -u rtunnel` expects, without a timestamp: the
// journal keeps its own.
//
// When the journal's socket is unavailable (send is nil) or a send fails,
// the line goes to stderr with the sd-daemon "<N>" priority prefix, which
// journald's stream reader turns into the same priority.
type journalHandler struct {
	level    slog.Leveler
	send     func(msg string, p journal.Priority, vars map[string]string) error
	fallback io.Writer
	attrs    []slog.Attr // from WithAttrs, group prefixes applied
	group    string      // "a.b." for attributes added after WithGroup
	mu       *sync.Mutex // serialises fallback writes of derived handlers
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	var text strings.Builder
	text.WriteString(r.Message)
	fields := map[string]string{}
	add := func(a slog.Attr) {
		appendAttr(&text, fields, "", a)
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&text, fields, h.group, a)
		return true
	})
	p := journalPriority(r.Level)
	if h.send != nil {
		if err := h.send(text.String(), p, fields); err == nil {
			return nil
		}
	}
	line := fmt.Sprintf("<%d>%s\n", p, text.String())
	if h.mu != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
	}
	_, err := io.WriteString(h.fallback, line)
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		a.Key = h.group + a.Key
		n.attrs = append(n.attrs, a)
	}
	return &n
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.group = h.group + name + "."
	return &n
}

// appendAttr adds a to MESSAGE as key=value and as a journal field.
func appendAttr(text *strings.Builder, fields map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() != slog.KindGroup {
		return
	}
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			appendAttr(text, fields, p, g)
		}
		return
	}
	key, s := prefix+a.Key, v.String()
	text.WriteString(" " + key + "=")
	if s == "" || strings.ContainsAny(s, " =\"\\\n\t") {
		text.WriteString(strconv.Quote(s))
	} else {
		text.WriteString(s)
	}
	if name := journalField(key); name != "" {
		fields[name] = s
	}
}

// journalField is the journal field name for an attribute key: upper case,
// other characters as '_', never one the journal reserves (a leading '_')
// or that Send sets itself. "" drops the field (the value stays in MESSAGE).
func journalField(key string) string {
	b := []byte(strings.ToUpper(key))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	name := strings.TrimLeft(string(b), "_")
	if name == "" || name[0] >= '0' && name[0] <= '9' || name == "MESSAGE" || name == "PRIORITY" {
		return ""
	}
	return name
}

// journalPriority maps a slog level to syslog's priorities.
func journalPriority(l slog.Level) journal.Priority {
	switch {
	case l < slog.LevelInfo:
		return journal.PriDebug
	case l < slog.LevelWarn:
		return journal.PriInfo
	case l < slog.LevelError:
		return journal.PriWarning
	}
	return journal.PriErr
}
