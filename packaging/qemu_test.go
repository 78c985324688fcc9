package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// emulated are the release binaries run under qemu-user: the boards remotes
// most often are (Raspberry Pi 3/4/5, Pi 2 and ARMv7 gateways, MT7621-class
// OpenWrt routers). qemu-user runs the foreign binary against this machine's
// kernel, so sockets, TCP_INFO and netlink are this kernel's.
var emulated = []struct {
	name, qemu, target string
	goarch, variant    string // for the sockprobe build
}{
	{"arm64", "qemu-aarch64-static", "linux/arm64 GOARM64=v8.0", "arm64", ""},
	{"armv7", "qemu-arm-static", "linux/arm GOARM=7", "arm", "GOARM=7"},
	{"mipsle", "qemu-mipsel-static", "linux/mipsle GOMIPS=softfloat", "mipsle", "GOMIPS=softfloat"},
}

// TestReleaseUnderQemu runs the arm64, armv7 and mipsle release binaries:
// version, check on the example config, and the Direct-topology smoke (a
// real loopback sshd as hub, the tunnel up, a real ssh login through it,
// SIGTERM exits 0).
func TestReleaseUnderQemu(t *testing.T) {
	dir := releaseDir(t)
	sshdtest.Require(t)
	for _, e := range emulated {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			sshdtest.RequireTools(t, e.qemu)
			bin := releaseFile(t, dir, "rtunnel-*-linux-"+e.name)
			argv := []string{e.qemu, bin}

			t.Run("version", func(t *testing.T) {
				out := run(t, e.qemu, bin, "version")
				if !strings.Contains(out, "\ntarget "+e.target+"\n") || !strings.HasPrefix(out, "rtunnel ") {
					t.Errorf("version printed %q, want target %s", out, e.target)
				}
				if strings.Contains(out, "revision unknown") {
					t.Errorf("version printed %q: the release must name its commit", out)
				}
			})
			t.Run("check", func(t *testing.T) { qemuCheck(t, argv) })
			t.Run("direct smoke", func(t *testing.T) { qemuDirectSmoke(t, argv) })
			t.Run("socket options", func(t *testing.T) { qemuSocketOptions(t, e.qemu, e.goarch, e.variant) })
		})
	}
}

// qemuCheck: the shipped example refused for its missing key (exit 78,
// naming the file), then accepted once the key and known_hosts exist.
func qemuCheck(t *testing.T, argv []string) {
	w := newInitWorld(t)
	example := filepath.Join(repoRoot(t), "packaging", "rtunnel.example.yaml")
	out, err := exec.Command(argv[0], append(argv[1:], "check", "--config", example)...).CombinedOutput()
	if code := exitCode(err); code != 78 || !strings.Contains(string(out), "/etc/rtunnel/id_ed25519") {
		t.Errorf("check on the example without its key: exit %d, %q; want 78 naming /etc/rtunnel/id_ed25519", code, out)
	}
	if out := run(t, argv[0], append(argv[1:], "check", "--config", w.good)...); strings.TrimSpace(out) != "ok" {
		t.Errorf("check with key and known_hosts: %q, want ok", out)
	}
}

// qemuDirectSmoke: the tunnel up, a real ssh login through it, SIGTERM
// exits 0.
func qemuDirectSmoke(t *testing.T, argv []string) {
	w := newDirectWorld(t)
	d := daemontest.StartCommand(t, argv, []string{"up", "--config", w.config})
	// Emulation makes the handshake's crypto slow; still bounded.
	d.WaitMsg(0, 90*time.Second, "forward up")
	w.login(t)
	d.Signal(syscall.SIGTERM)
	code, exited := d.Wait(30 * time.Second)
	if !exited || code != 0 {
		t.Errorf("after SIGTERM: exited=%v code=%d, want exit 0", exited, code)
	}
}

// qemuSocketOptions builds testdata/sockprobe for the emulated target and
// compares its socket calls with the native ones. TCP_USER_TIMEOUT and
// SO_REUSEADDR must pass through. TCP_INFO does not: qemu-user (7.2, Debian
// 12) copies only the first 4 bytes of struct tcp_info, so the
// last_data_recv the tunnel package reads is 0 ("just now") under
// emulation, while the native kernel reports the 300 ms of silence. The
// test logs that; it is a limit of the emulator, not of the boards, whose
// own kernels fill the whole struct.
func qemuSocketOptions(t *testing.T, qemu, goarch, variant string) {
	native := probe(t, "", runtime.GOARCH, "")
	foreign := probe(t, qemu, goarch, variant)
	for _, k := range []string{"user_timeout_ms", "reuseaddr"} {
		if foreign[k] != native[k] || native[k] == "" {
			t.Errorf("%s under %s: %q, natively %q", k, qemu, foreign[k], native[k])
		}
	}
	if native["tcp_info_len"] != "232 ok" {
		t.Errorf("native TCP_INFO: %q, want the full 232 bytes", native["tcp_info_len"])
	}
	if ms, err := strconv.Atoi(native["tcp_info_last_data_recv_ms"]); err != nil || ms < 250 {
		t.Errorf("native last_data_recv after 300 ms of silence: %q", native["tcp_info_last_data_recv_ms"])
	}
	t.Logf("TCP_INFO bytes filled: native %q, under %s %q; last_data_recv after 300 ms idle: native %s ms, emulated %s ms",
		native["tcp_info_len"], qemu, foreign["tcp_info_len"], native["tcp_info_last_data_recv_ms"], foreign["tcp_info_last_data_recv_ms"])
}

func probe(t *testing.T, qemu, goarch, variant string) map[string]string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sockprobe-"+goarch)
	build := exec.Command("go", "build", "-o", bin, "./packaging/testdata/sockprobe")
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if variant != "" {
		build.Env = append(build.Env, variant)
	}
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build sockprobe for %s: %v\n%s", goarch, err, out)
	}
	var out string
	if qemu == "" {
		out = run(t, bin)
	} else {
		out = run(t, qemu, bin)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, " ")
		m[k] = v
	}
	return m
}
