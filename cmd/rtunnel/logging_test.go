package main

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/rtunnel/rtunnel/config"
)

// sentEntry is one journal.Send call.
type sentEntry struct {
	msg    string
	pri    journal.Priority
	fields map[string]string
}

// fakeJournal stands in for go-systemd's journal package.
type fakeJournal struct {
	mu       sync.Mutex
	stream   bool // stderr is the journal's stream
	up       bool // the socket answers
	failSend bool
	sent     []sentEntry
}

func (j *fakeJournal) output(stderr *syncBuffer) *logOutput {
	o := newLogOutput(stderr)
	o.stderrIsJournal = func() (bool, error) { return j.stream, nil }
	o.journalUp = func() bool { return j.up }
	o.journalSend = func(msg string, p journal.Priority, vars map[string]string) error {
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.failSend {
			return errors.New("sendmsg: connection refused")
		}
		j.sent = append(j.sent, sentEntry{msg, p, vars})
		return nil
	}
	return o
}

// Under systemd (stderr is the journal's stream) the default format logs
// through the journal: PRIORITY from the level, the fixed keys as fields,
// and MESSAGE without a timestamp.
func TestAutoFormatLogsToTheJournalWithPriorityAndFields(t *testing.T) {
	j := &fakeJournal{stream: true, up: true}
	var stderr syncBuffer
	o := j.output(&stderr)
	format, _, err := o.apply(config.Log{Level: "info", Format: "auto"})
	if err != nil || format != formatJournal {
		t.Fatalf("apply = %q, %v; want journal", format, err)
	}
	log := o.logger().With("tunnel", "hub", "server", "root@hub:22")
	log.Debug("not shown at info")
	log.Info("forward up", "forward", "localhost:2220->localhost:22")
	log.Warn("tunnel down; will retry", "result", "dial", "err", "dial tcp 10.0.0.1:22: connect: connection refused", "retry_in", "2s")
	log.Error("tunnel stopped", "err", "host key changed")
	if stderr.String() != "" {
		t.Errorf("wrote to stderr with the journal up: %q", stderr.String())
	}
	want := []struct {
		pri    journal.Priority
		msg    string
		fields map[string]string
	}{
		{journal.PriInfo, "forward up tunnel=hub server=root@hub:22 forward=localhost:2220->localhost:22",
			map[string]string{"TUNNEL": "hub", "SERVER": "root@hub:22", "FORWARD": "localhost:2220->localhost:22"}},
		{journal.PriWarning, `tunnel down; will retry tunnel=hub server=root@hub:22 result=dial err="dial tcp 10.0.0.1:22: connect: connection refused" retry_in=2s`,
			map[string]string{"TUNNEL": "hub", "SERVER": "root@hub:22", "RESULT": "dial", "ERR": "dial tcp 10.0.0.1:22: connect: connection refused", "RETRY_IN": "2s"}},
		{journal.PriErr, `tunnel stopped tunnel=hub server=root@hub:22 err="host key changed"`,
			map[string]string{"TUNNEL": "hub", "SERVER": "root@hub:22", "ERR": "host key changed"}},
	}
	if len(j.sent) != len(want) {
		t.Fatalf("sent %d entries, want %d: %+v", len(j.sent), len(want), j.sent)
	}
	for i, w := range want {
		got := j.sent[i]
		if got.pri != w.pri || got.msg != w.msg {
			t.Errorf("entry %d: PRIORITY=%d MESSAGE=%q\nwant PRIORITY=%d MESSAGE=%q", i, got.pri, got.msg, w.pri, w.msg)
		}
		if len(got.fields) != len(w.fields) {
			t.Errorf("entry %d: fields %v, want %v", i, got.fields, w.fields)
		}
		for k, v := range w.fields {
			if got.fields[k] != v {
				t.Errorf("entry %d: %s=%q, want %q", i, k, got.fields[k], v)
			}
		}
	}
}

// Without the journal's socket, or when a send fails, each line goes to
// stderr with the sd-daemon priority prefix, which journald's stream
// reader turns into the same priority.
func TestJournalFallsBackToPrefixedStderr(t *testing.T) {
	for _, tc := range []struct {
		name     string
		up, fail bool
	}{
		{"socket unavailable", false, false},
		{"send fails", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := &fakeJournal{up: tc.up, failSend: tc.fail}
			var stderr syncBuffer
			o := j.output(&stderr)
			if _, _, err := o.apply(config.Log{Level: "debug", Format: "journal"}); err != nil {
				t.Fatal(err)
			}
			log := o.logger().With("tunnel", "hub")
			log.Debug("a")
			log.Info("b", "forward", "x")
			log.Warn("c")
			log.Error("d", "err", "two words")
			want := "<7>a tunnel=hub\n<6>b tunnel=hub forward=x\n<4>c tunnel=hub\n<3>d tunnel=hub err=\"two words\"\n"
			if got := stderr.String(); got != want {
				t.Errorf("stderr:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// Outside systemd the default is text; json and text stay as configured.
func TestAutoFormatOutsideSystemdIsText(t *testing.T) {
	j := &fakeJournal{stream: false, up: true}
	var stderr syncBuffer
	o := j.output(&stderr)
	if format, _, _ := o.apply(config.Log{Format: "auto"}); format != formatText {
		t.Errorf("auto without the journal = %q, want text", format)
	}
	if format, _, _ := o.apply(config.Log{Format: ""}); format != formatText {
		t.Errorf("no format without the journal = %q, want text", format)
	}
	o.logger().Info("hello", "tunnel", "hub")
	if got := stderr.String(); !strings.Contains(got, "level=INFO msg=hello tunnel=hub") {
		t.Errorf("text line %q", got)
	}
	if _, _, err := o.apply(config.Log{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "auto, text, json or journal") {
		t.Errorf("an unknown format: %v", err)
	}
}

// A reload's log section applies to every logger already handed out, the
// tunnels' (made With attributes) included: level and format.
func TestLogSettingsApplyOnReload(t *testing.T) {
	j := &fakeJournal{}
	var stderr syncBuffer
	o := j.output(&stderr)
	if _, _, err := o.apply(config.Log{Level: "info", Format: "text"}); err != nil {
		t.Fatal(err)
	}
	tlog := o.logger().With("tunnel", "hub")
	tlog.Debug("hidden")
	tlog.Info("as text")
	format, changed, err := o.apply(config.Log{Level: "debug", Format: "json"})
	if err != nil || format != formatJSON || !changed {
		t.Fatalf("apply json = %q, changed %v, %v", format, changed, err)
	}
	tlog.Debug("as json at debug")
	if _, changed, _ := o.apply(config.Log{Level: "debug", Format: "json"}); changed {
		t.Error("the same settings again count as a change")
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "msg=\"as text\" tunnel=hub") ||
		!strings.Contains(lines[1], `"msg":"as json at debug","tunnel":"hub"`) {
		t.Errorf("log after reload:\n%s", stderr.String())
	}
}

func TestJournalPriorityAndFieldNames(t *testing.T) {
	for l, want := range map[slog.Level]journal.Priority{
		slog.LevelDebug: journal.PriDebug, slog.LevelInfo: journal.PriInfo, slog.LevelInfo + 2: journal.PriInfo,
		slog.LevelWarn: journal.PriWarning, slog.LevelError: journal.PriErr, slog.LevelError + 4: journal.PriErr,
	} {
		if got := journalPriority(l); got != want {
			t.Errorf("journalPriority(%v) = %d, want %d", l, got, want)
		}
	}
	for key, want := range map[string]string{
		"tunnel": "TUNNEL", "retry_in": "RETRY_IN", "was-up.for": "WAS_UP_FOR", "_hidden": "HIDDEN",
		"message": "", "priority": "", "1st": "", "": "",
	} {
		if got := journalField(key); got != want {
			t.Errorf("journalField(%q) = %q, want %q", key, got, want)
		}
	}
}
