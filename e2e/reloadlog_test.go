package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
)

// log.format applies on reload, for the tunnels' own lines too: json, then
// text. (The level's switch is pinned by TestLogSettingsApplyOnReload.)
func TestReloadSwitchesLogFormatAndLevel(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	cfg := w.config(t, [][2]string{w.sshForward()}, "")
	json := mustRead(t, cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(json, "log: {level: debug, format: json}", "log: {level: info, format: json}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := w.up(t, cfg)
	waitForwardUp(t, d, 0, 20*time.Second)

	if err := os.WriteFile(cfg, []byte(strings.Replace(json, "log: {level: debug, format: json}", "log: {level: debug, format: text}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := d.Mark()
	d.Signal(syscall.SIGHUP)
	// The change is announced in the new format, and so is the reload.
	d.WaitFrom(mark, 10*time.Second, "the change logged as text", func(e daemontest.Entry) bool {
		return e.Level() == "RAW" && strings.Contains(e.Msg(), `level=INFO msg="log format changed" log_format=text`)
	})
	d.WaitFrom(mark, 10*time.Second, "the reload logged as text", func(e daemontest.Entry) bool {
		return e.Level() == "RAW" && strings.Contains(e.Msg(), "level=INFO msg=reloaded")
	})
	// SIGUSR1: the tunnel's own lines, at debug level now, are text too.
	d.Signal(syscall.SIGUSR1)
	d.WaitFrom(mark, 10*time.Second, "a tunnel's line as text", func(e daemontest.Entry) bool {
		return e.Level() == "RAW" && strings.Contains(e.Msg(), "msg=\"forward up\" tunnel=hub")
	})
}
