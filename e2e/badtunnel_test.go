package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// One tunnel whose key is 0644 and one whose known_hosts has no entry for
// its hub stop alone at start (ERROR in the log, stopped on /readyz and in
// rtunnel_tunnel_stopped); the good tunnel runs. `check` still reports both
// problems with exit 78, and `up` exits 78 when no tunnel can run.
func TestOneBadTunnelDoesNotStopTheOthers(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	loose := filepath.Join(w.dir, "id_loose")
	data, err := os.ReadFile(w.tunnelKey.Private)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loose, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	emptyKH := filepath.Join(w.dir, "known_hosts_empty")
	if err := os.WriteFile(emptyKH, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := func(name, identity, knownHosts string) string {
		return fmt.Sprintf("  - name: %s\n    server: root@127.0.0.1:%d\n    identity: %s\n    known_hosts: %s\n"+
			"    forwards: [{remote: \"localhost:%d\", local: \"127.0.0.1:9\"}]\n", name, w.hub.Port, identity, knownHosts, sshdtest.FreePort(t))
	}
	cfg := w.config(t, [][2]string{w.sshForward()}, bad("loosekey", loose, w.knownHosts)+bad("nohostkey", w.tunnelKey.Private, emptyKH))
	addr := withMetrics(t, cfg)

	d := w.up(t, cfg)
	waitForwardUp(t, d, 0, 20*time.Second)
	w.echoLogin(t)
	for _, name := range []string{"loosekey", "nohostkey"} {
		e, _, _ := d.WaitFrom(0, 5*time.Second, "the refusal of "+name, func(e daemontest.Entry) bool {
			return e.Level() == "ERROR" && e.Str("tunnel") == name && strings.HasPrefix(e.Msg(), "tunnel not started: its files have problems")
		})
		want := map[string]string{"loosekey": loose, "nohostkey": emptyKH}[name]
		if !strings.Contains(e.Str("err"), want) {
			t.Errorf("%s: the error does not name %s: %q", name, want, e.Str("err"))
		}
	}
	m := scrape(t, addr)
	for metric, want := range map[string]float64{
		`rtunnel_tunnel_up{tunnel="hub"}`:            1,
		`rtunnel_tunnel_stopped{tunnel="hub"}`:       0,
		`rtunnel_tunnel_stopped{tunnel="loosekey"}`:  1,
		`rtunnel_tunnel_stopped{tunnel="nohostkey"}`: 1,
		`rtunnel_tunnel_up{tunnel="loosekey"}`:       0,
	} {
		if got, ok := m[metric]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", metric, got, ok, want)
		}
	}
	code, body := httpGet(t, "http://"+addr+"/readyz")
	// /readyz is public: states only, the reasons are on the control socket.
	if code != 503 || !strings.Contains(body, "loosekey: stopped\n") || !strings.Contains(body, "nohostkey: stopped\n") || strings.Contains(body, "hub:") {
		t.Errorf("/readyz = %d %q, want 503 naming the two stopped tunnels only", code, body)
	}
	if d.ExitCode() != 0 {
		t.Errorf("rtunnel exited")
	}

	// check reports every problem, exit 78.
	out, err := exec.Command(daemontest.Binary(t), "check", "--config", cfg).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 78 || !strings.Contains(string(out), loose) || !strings.Contains(string(out), emptyKH) {
		t.Errorf("check: %v\n%s", err, out)
	}

	// No tunnel can run: up refuses to start, exit 78.
	only := w.config(t, nil, "")
	onlyBad := filepath.Join(w.dir, "only-bad.yaml")
	head, _, _ := strings.Cut(mustRead(t, only), "tunnels:\n")
	if err := os.WriteFile(onlyBad, []byte(head+"tunnels:\n"+bad("loosekey", loose, w.knownHosts)), 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := daemontest.Start(t, []string{"up", "--config", onlyBad})
	code2, ok := d2.Wait(20 * time.Second)
	if !ok || code2 != 78 || !strings.Contains(d2.Raw(), loose) {
		t.Errorf("up with no tunnel that can run: exit %d (exited %v), want 78 naming %s:\n%s", code2, ok, loose, d2.Raw())
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
