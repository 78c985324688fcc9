package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// The trust and identity keys through the real binary: a user certificate
// beside the key logs in against the cert-authority line that rtunnel
// authorized-key --ca prints, and strict_host_key_checking: accept-new with
// hash_known_hosts learns the hub's key. A later different key under the
// same name exits 78 and leaves known_hosts as it was.
func TestCertificateAndAcceptNew(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	dir := t.TempDir()
	ca := sshdtest.NewKey(t, dir, "user_ca", "ed25519")
	key := sshdtest.NewKey(t, dir, "id", "ed25519")
	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run("ssh-keygen", "-q", "-s", ca.Private, "-I", "e2e", "-n", "root", "-V", "-5m:+1h", key.Public)
	line := run(daemontest.Binary(t), "authorized-key", "--role", "direct-remote", "--port", strconv.Itoa(w.tunnelPort), "--ca", ca.Public)
	if !strings.HasPrefix(line, "cert-authority,restrict,port-forwarding,") {
		t.Fatalf("authorized-key --ca printed %q", line)
	}
	w.hub.SetAuthorizedKeys(t, []string{strings.TrimSpace(line)})

	kh := filepath.Join(dir, "learned", "known_hosts")
	if err := os.Mkdir(filepath.Dir(kh), 0o755); err != nil {
		t.Fatal(err)
	}
	config := func(port int) string {
		path := filepath.Join(t.TempDir(), "rtunnel.yaml")
		cfg := fmt.Sprintf(`log: {format: json}
tunnels:
  - name: hub
    server: root@127.0.0.1:%d
    identity: %s
    known_hosts: %s
    strict_host_key_checking: accept-new
    hash_known_hosts: true
    host_key_alias: hub.example.org
    connect_timeout: 5s
    forwards:
      - remote: localhost:%d
        local: %s
`, port, key.Private, kh, w.tunnelPort, w.remote.Addr)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	d := w.up(t, config(w.hub.Port))
	waitForwardUp(t, d, 0, 20*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rtunnel output:\n%s", d.Raw())
		}
	})
	w.echoLogin(t)
	if !strings.Contains(w.hub.Log(), "ED25519-CERT") {
		t.Errorf("the hub did not log a certificate login")
	}
	d.Signal(syscall.SIGTERM)
	if code, ok := d.Wait(10 * time.Second); !ok || code != 0 {
		t.Fatalf("rtunnel up: exit %d (stopped %v) after SIGTERM", code, ok)
	}
	learned, err := os.ReadFile(kh)
	if err != nil || !strings.HasPrefix(string(learned), "|1|") {
		t.Fatalf("known_hosts %q (%v), want one hashed line", learned, err)
	}
	if out := run("ssh-keygen", "-F", "hub.example.org", "-f", kh); !strings.Contains(out, "ssh-ed25519") {
		t.Errorf("ssh-keygen -F hub.example.org does not find the learned key:\n%s", out)
	}

	impostor := sshdtest.Start(t, sshdtest.Options{Name: "impostor"})
	d = w.up(t, config(impostor.Port))
	code, ok := d.Wait(20 * time.Second)
	if !ok || code != 78 {
		t.Fatalf("rtunnel up against another key: exit %d (exited %v), want 78", code, ok)
	}
	if !strings.Contains(d.Raw(), "HAS CHANGED") {
		t.Errorf("output lacks HAS CHANGED:\n%s", d.Raw())
	}
	if now, _ := os.ReadFile(kh); string(now) != string(learned) {
		t.Errorf("known_hosts changed after the refused key:\n%s", now)
	}
}
