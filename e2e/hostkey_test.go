package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// Test 5: unknown host key, changed host key and a key file readable by
// others: exit 78 with the message a user needs, for up and for check.
func TestPermanentErrorsExit78(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	other := sshdtest.Start(t, sshdtest.Options{Name: "impostor"})

	cases := []struct {
		name  string
		setup func(t *testing.T) string // returns the config path
		want  []string
	}{
		{"unknown host", func(t *testing.T) string {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			other.WriteKnownHosts(t, kh, "example.invalid")
			return w.configWith(t, w.tunnelKey.Private, kh)
		}, []string{fmt.Sprintf("has no key for [127.0.0.1]:%d", w.hub.Port), fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >>", w.hub.Port)}},
		{"changed host key", func(t *testing.T) string {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			lines := other.KnownHostsLines("127.0.0.1")
			for i, l := range lines {
				lines[i] = strings.Replace(l, fmt.Sprintf("[127.0.0.1]:%d", other.Port), fmt.Sprintf("[127.0.0.1]:%d", w.hub.Port), 1)
			}
			os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
			return w.configWith(t, w.tunnelKey.Private, kh)
		}, []string{"HAS CHANGED", "will not connect", "ssh-keygen -R"}},
		{"key readable by others", func(t *testing.T) string {
			key := filepath.Join(t.TempDir(), "id")
			data, _ := os.ReadFile(w.tunnelKey.Private)
			os.WriteFile(key, data, 0o644)
			return w.configWith(t, key, w.knownHosts)
		}, []string{"permissions 0644 are too open", "chmod 600"}},
		{"encrypted key", func(t *testing.T) string {
			key := filepath.Join(t.TempDir(), "id")
			if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", key).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v %s", err, out)
			}
			return w.configWith(t, key, w.knownHosts)
		}, []string{"protected by a passphrase", "rtunnel runs unattended"}},
		{"public key given as identity", func(t *testing.T) string {
			pub := filepath.Join(t.TempDir(), "id.pub")
			data, _ := os.ReadFile(w.tunnelKey.Public)
			os.WriteFile(pub, data, 0o644) // as ssh-keygen writes it: said to be a public key, not "too open"
			return w.configWith(t, pub, w.knownHosts)
		}, []string{"this is a public key", "without .pub"}},
		{"known_hosts writable by group", func(t *testing.T) string {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			data, _ := os.ReadFile(w.knownHosts)
			os.WriteFile(kh, data, 0o644)
			os.Chmod(kh, 0o664)
			return w.configWith(t, w.tunnelKey.Private, kh)
		}, []string{"permissions 0664", "group or others write it", "chmod go-w /"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.setup(t)
			d := daemontest.Start(t, []string{"up", "--config", cfg})
			code, ok := d.Wait(20 * time.Second)
			if !ok {
				t.Fatalf("rtunnel up still running; want exit 78")
			}
			if code != 78 {
				t.Fatalf("exit status %d, want 78", code)
			}
			for _, s := range c.want {
				if !strings.Contains(d.Raw(), s) {
					t.Errorf("output lacks %q:\n%s", s, d.Raw())
				}
			}
		})
	}
}

// configWith is a minimal config using the given key and known_hosts.
func (w *direct) configWith(t *testing.T, identity, knownHosts string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rtunnel.yaml")
	cfg := fmt.Sprintf(`log: {format: json}
tunnels:
  - name: hub
    server: root@127.0.0.1:%d
    identity: %s
    known_hosts: %s
    connect_timeout: 5s
    forwards:
      - remote: localhost:%d
        local: %s
`, w.hub.Port, identity, knownHosts, w.tunnelPort, w.remote.Addr)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// known_hosts as OpenSSH writes it: only the hub's RSA key although the hub
// also offers ed25519 (golang/go#29286: rtunnel must offer only the types
// known_hosts holds), and hashed host names.
func TestKnownHostsFormats(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	dir := t.TempDir()
	key := sshdtest.NewKey(t, dir, "id", "ed25519")
	port := sshdtest.FreePort(t)
	hub := sshdtest.Start(t, sshdtest.Options{Name: "hub", HostKeyTypes: []string{"ed25519", "rsa"},
		AuthorizedKeys: []string{guideLine(fmt.Sprintf("localhost:%d", port), "255.255.255.255:9", key.PublicLine)}})
	target := serveLocal(t, "", func(c net.Conn) { io.WriteString(c, "ok\n") })
	w := &direct{hub: hub, tunnelPort: port, remote: &sshdtest.Server{Addr: target.Addr()}}

	var rsaOnly []string
	for _, l := range hub.KnownHostsLines("127.0.0.1") {
		if strings.Contains(l, "ssh-rsa") {
			rsaOnly = append(rsaOnly, l)
		}
	}
	if len(rsaOnly) != 1 {
		t.Fatalf("want one RSA known_hosts line, got %q", rsaOnly)
	}
	rsaFile := filepath.Join(dir, "kh_rsa")
	os.WriteFile(rsaFile, []byte(rsaOnly[0]+"\n"), 0o644)

	hashed := filepath.Join(dir, "kh_hashed")
	hub.WriteKnownHosts(t, hashed, "127.0.0.1")
	if out, err := exec.Command("ssh-keygen", "-H", "-f", hashed).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -H: %v %s", err, out)
	}
	data, _ := os.ReadFile(hashed)
	if !strings.HasPrefix(string(data), "|1|") {
		t.Fatalf("known_hosts not hashed: %q", data)
	}

	revoked := filepath.Join(dir, "kh_revoked")
	f := strings.Fields(rsaOnly[0])
	lines := []string{rsaOnly[0], "@revoked * " + f[1] + " " + f[2]}
	os.WriteFile(revoked, []byte(strings.Join(lines, "\n")+"\n"), 0o644)

	for _, c := range []struct {
		name, kh string
		exit78   string
	}{
		{"rsa only, server also has ed25519", rsaFile, ""},
		{"hashed names", hashed, ""},
		{"revoked key", revoked, "revoked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := daemontest.Start(t, []string{"up", "--config", w.configWith(t, key.Private, c.kh)})
			if c.exit78 == "" {
				d.WaitMsg(0, 20*time.Second, "forward up")
				d.Signal(os.Interrupt)
				if code, ok := d.Wait(10 * time.Second); !ok || code != 0 {
					t.Fatalf("exit %d after SIGINT", code)
				}
				return
			}
			code, ok := d.Wait(20 * time.Second)
			if !ok || code != 78 || !strings.Contains(d.Raw(), c.exit78) {
				t.Fatalf("exit %d (exited %v), want 78 mentioning %q:\n%s", code, ok, c.exit78, d.Raw())
			}
		})
	}
}

// With several tunnels a permanent error stops only that tunnel; the
// process keeps serving the others, and exits 78 only once none is left.
func TestPermanentErrorStopsOnlyThatTunnel(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	impostor := sshdtest.Start(t, sshdtest.Options{Name: "impostor"})
	bad := filepath.Join(t.TempDir(), "known_hosts_bad")
	lines := impostor.KnownHostsLines("127.0.0.1")
	for i, l := range lines {
		lines[i] = strings.Replace(l, fmt.Sprintf("[127.0.0.1]:%d", impostor.Port), fmt.Sprintf("[127.0.0.1]:%d", w.hub.Port), 1)
	}
	os.WriteFile(bad, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	cfg := w.config(t, [][2]string{w.sshForward()}, fmt.Sprintf(`  - name: changed
    server: root@127.0.0.1:%d
    identity: %s
    known_hosts: %s
    forwards: [{remote: "localhost:%d", local: "127.0.0.1:9"}]
`, w.hub.Port, w.tunnelKey.Private, bad, w.tunnelPort+1))
	d := daemontest.Start(t, []string{"up", "--config", cfg})
	e, _, _ := d.WaitFrom(0, 20*time.Second, "the changed tunnel stopping", func(e daemontest.Entry) bool {
		return e.Msg() == "tunnel stopped: this needs an operator, retrying cannot help" && e.Str("tunnel") == "changed"
	})
	if e.Level() != "ERROR" || !strings.Contains(e.Str("err"), "HAS CHANGED") {
		t.Errorf("stop logged as %s %q", e.Level(), e.Str("err"))
	}
	waitForwardUp(t, d, 0, 20*time.Second)
	w.echoLogin(t)
	if _, exited := d.Wait(0); exited {
		t.Fatalf("rtunnel exited (%d) though one tunnel still runs", d.ExitCode())
	}
}
