package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// This machine runs neither OpenRC nor procd, so the service scripts are
// sourced by sh with the init system's functions stubbed out: each stub
// appends its call to a log the test reads. What runs for real is the
// scripts' own logic and `rtunnel check` on a good and on a broken config.

// initWorld is a config that `rtunnel check` accepts, one it refuses (the
// key is missing), a native rtunnel and a stub directory first in PATH.
type initWorld struct {
	dir, good, broken, bin, calls string
	env                           []string
}

func newInitWorld(t *testing.T) *initWorld {
	t.Helper()
	sshdtest.RequireTools(t, "ssh-keygen")
	w := &initWorld{dir: t.TempDir(), bin: daemontest.Binary(t)}
	key := sshdtest.NewKey(t, w.dir, "id_ed25519", "ed25519")
	f := strings.Fields(key.PublicLine)
	kh := filepath.Join(w.dir, "known_hosts")
	writeFile(t, kh, "[master.example.org]:3333 "+f[0]+" "+f[1]+"\n")
	example, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "rtunnel.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	good := strings.NewReplacer("/etc/rtunnel/id_ed25519", key.Private, "/etc/rtunnel/known_hosts", kh).Replace(string(example))
	w.good = filepath.Join(w.dir, "good.yaml")
	writeFile(t, w.good, good)
	w.broken = filepath.Join(w.dir, "broken.yaml")
	writeFile(t, w.broken, strings.ReplaceAll(good, key.Private, filepath.Join(w.dir, "missing_key")))

	// Stubs for the commands the scripts call that are not shell functions.
	stubs := filepath.Join(w.dir, "bin")
	if err := os.Mkdir(stubs, 0o755); err != nil {
		t.Fatal(err)
	}
	w.calls = filepath.Join(w.dir, "calls")
	for _, name := range []string{"supervise-daemon", "logger"} {
		writeExec(t, filepath.Join(stubs, name), "#!/bin/sh\necho \""+name+" $*\" >>\"$CALLS\"\n")
	}
	// su -s SHELL USER -c CMD: run CMD as ourselves, record the user.
	writeExec(t, filepath.Join(stubs, "su"), "#!/bin/sh\necho \"su $3\" >>\"$CALLS\"\nexec /bin/sh -c \"$5\"\n")
	w.env = append(os.Environ(), "PATH="+stubs+":"+os.Getenv("PATH"), "CALLS="+w.calls)
	return w
}

// sh runs script (sourced after the stubs in prelude) and returns its
// output, its exit status and the stub calls it made.
func (w *initWorld) sh(t *testing.T, prelude, initScript, body string) (out string, code int, calls string) {
	t.Helper()
	os.Remove(w.calls)
	script := prelude + "\n. " + initScript + "\n" + body + "\n"
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = w.env
	b, err := cmd.CombinedOutput()
	c, _ := os.ReadFile(w.calls)
	return string(b), exitCode(err), string(c)
}

const openrcStubs = `
ebegin() { echo "ebegin $*" >>"$CALLS"; }
eend() { echo "eend $*" >>"$CALLS"; return "$1"; }
eerror() { echo "eerror $*" >>"$CALLS"; echo "$*" >&2; }
checkpath() { echo "checkpath $*" >>"$CALLS"; }
need() { echo "need $*" >>"$CALLS"; }
use() { echo "use $*" >>"$CALLS"; }
after() { echo "after $*" >>"$CALLS"; }
`

func TestOpenRCScript(t *testing.T) {
	script := filepath.Join(repoRoot(t), "packaging", "openrc", "rtunnel")
	run(t, "sh", "-n", script)
	w := newInitWorld(t)

	t.Run("settings", func(t *testing.T) {
		out, code, _ := w.sh(t, "RC_SVCNAME=rtunnel"+openrcStubs, script,
			`echo "$command|$command_args|$command_user|$supervisor|$respawn_delay|$respawn_max|$retry"`)
		want := "/usr/bin/rtunnel|up --config /etc/rtunnel/rtunnel.yaml|rtunnel:rtunnel|supervise-daemon|5|0|TERM/20/KILL/5\n"
		if code != 0 || out != want {
			t.Errorf("exit %d, settings %q, want %q", code, out, want)
		}
		// A symlinked instance reads its own file.
		out, _, _ = w.sh(t, "RC_SVCNAME=rtunnel.office"+openrcStubs, script, `echo "$command_args"`)
		if out != "up --config /etc/rtunnel/office.yaml\n" {
			t.Errorf("rtunnel.office: command_args %q", out)
		}
		_, _, calls := w.sh(t, "RC_SVCNAME=rtunnel"+openrcStubs, script, "depend")
		if calls != "need net\nuse dns logger\nafter firewall\n" {
			t.Errorf("depend: %q", calls)
		}
	})
	t.Run("start_pre", func(t *testing.T) {
		_, code, calls := w.sh(t, "RC_SVCNAME=rtunnel RTUNNEL_CONFIG="+w.good+openrcStubs, script, "command="+w.bin+"; start_pre")
		if code != 0 || !strings.Contains(calls, "checkpath --directory --mode 0700 --owner rtunnel:rtunnel /var/lib/rtunnel") || !strings.Contains(calls, "su rtunnel") {
			t.Errorf("good config: exit %d, calls %q", code, calls)
		}
		out, code, _ := w.sh(t, "RC_SVCNAME=rtunnel RTUNNEL_CONFIG="+w.broken+openrcStubs, script, "command="+w.bin+"; start_pre")
		if code == 0 || !strings.Contains(out, "missing_key") {
			t.Errorf("broken config: start_pre exit %d, output %q; want a failure naming the key", code, out)
		}
	})
	t.Run("reload", func(t *testing.T) {
		_, code, calls := w.sh(t, "RC_SVCNAME=rtunnel RTUNNEL_CONFIG="+w.good+openrcStubs, script, "command="+w.bin+"; reload")
		if code != 0 || !strings.Contains(calls, "supervise-daemon rtunnel --signal HUP") {
			t.Errorf("good config: reload exit %d, calls %q; want SIGHUP through supervise-daemon", code, calls)
		}
		_, code, calls = w.sh(t, "RC_SVCNAME=rtunnel RTUNNEL_CONFIG="+w.broken+openrcStubs, script, "command="+w.bin+"; reload")
		if code == 0 || strings.Contains(calls, "supervise-daemon") || !strings.Contains(calls, "the running config stays") {
			t.Errorf("broken config: reload exit %d, calls %q; want a refusal and no signal", code, calls)
		}
	})
}

const procdStubs = `
procd_open_instance() { echo "open" >>"$CALLS"; }
procd_set_param() { echo "param $*" >>"$CALLS"; }
procd_close_instance() { echo "close" >>"$CALLS"; }
procd_send_signal() { echo "signal $*" >>"$CALLS"; }
`

func TestProcdScript(t *testing.T) {
	script := filepath.Join(repoRoot(t), "packaging", "procd", "rtunnel")
	run(t, "sh", "-n", script)
	w := newInitWorld(t)

	t.Run("start", func(t *testing.T) {
		_, code, calls := w.sh(t, procdStubs, script, "PROG="+w.bin+" CONFIG="+w.good+"; start_service")
		want := "open\n" +
			"param command " + w.bin + " up --config " + w.good + "\n" +
			"param respawn 3600 5 0\n" +
			"param stderr 1\nparam stdout 1\nparam term_timeout 20\nparam no_new_privs 1\n" +
			"close\n"
		if code != 0 || calls != want {
			t.Errorf("exit %d, procd calls:\n%s\nwant:\n%s", code, calls, want)
		}
		_, _, calls = w.sh(t, procdStubs, script, `echo "START=$START STOP=$STOP USE_PROCD=$USE_PROCD" >>"$CALLS"`)
		if calls != "START=99 STOP=10 USE_PROCD=1\n" {
			t.Errorf("rc.common settings: %q", calls)
		}
	})
	t.Run("start with a broken config", func(t *testing.T) {
		out, code, calls := w.sh(t, procdStubs, script, "PROG="+w.bin+" CONFIG="+w.broken+"; start_service")
		if code == 0 || strings.Contains(calls, "open") || !strings.Contains(calls, "logger -t rtunnel -p daemon.err not started:") || !strings.Contains(out, "missing_key") {
			t.Errorf("exit %d, output %q, calls %q; want no instance, a syslog line and the reason", code, out, calls)
		}
	})
	t.Run("reload", func(t *testing.T) {
		_, code, calls := w.sh(t, procdStubs, script, "PROG="+w.bin+" CONFIG="+w.good+"; reload_service")
		if code != 0 || calls != "signal rtunnel * HUP\n" {
			t.Errorf("good config: exit %d, calls %q", code, calls)
		}
		_, code, calls = w.sh(t, procdStubs, script, "PROG="+w.bin+" CONFIG="+w.broken+"; reload_service")
		if code == 0 || calls != "" {
			t.Errorf("broken config: exit %d, calls %q; want a refusal and no signal", code, calls)
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeExec(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestShellcheck lints the release's shell: the service scripts, the
// packages' maintainer scripts and the build scripts.
func TestShellcheck(t *testing.T) {
	sshdtest.RequireTools(t, "shellcheck")
	root := repoRoot(t)
	posix, _ := filepath.Glob(filepath.Join(root, "packaging", "apk", "*.sh"))
	ipk, _ := filepath.Glob(filepath.Join(root, "packaging", "ipk", "*.sh"))
	posix = append(append(posix, ipk...),
		filepath.Join(root, "packaging", "openrc", "rtunnel"),
		filepath.Join(root, "packaging", "procd", "rtunnel"),
		filepath.Join(root, "packaging", "pkgversion.sh"))
	run(t, "shellcheck", append([]string{"-s", "sh"}, posix...)...)
	run(t, "shellcheck", filepath.Join(root, "scripts", "release.sh"), filepath.Join(root, "scripts", "binsize.sh"))
}
