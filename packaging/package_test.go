package packaging

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func requireRootDpkg(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("dpkg")
	if os.Geteuid() != 0 || err != nil {
		msg := "the package test needs root and dpkg"
		if os.Getenv("RTUNNEL_REQUIRE_SSHD") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg + " (set RTUNNEL_REQUIRE_SSHD=1 to fail instead)")
	}
}

// TestDebInstall builds the .deb with nfpm, installs it with dpkg -i, runs
// rtunnel version and rtunnel check on the shipped example config (as the
// rtunnel user, as the unit would), and removes it again.
func TestDebInstall(t *testing.T) {
	requireRootDpkg(t)
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "rtunnel").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Skip("an rtunnel package is installed on this machine; not touching it")
	}
	root, _ := filepath.Abs("..")
	dist := filepath.Join(root, "dist") // package.sh's output, git-ignored
	old, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	for _, f := range old {
		os.Remove(f)
	}
	cmd := exec.Command("bash", "packaging/package.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PACKAGERS=deb")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("package.sh: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	if len(debs) != 1 {
		entries, _ := os.ReadDir(dist)
		t.Fatalf("want one .deb in %s, got %v (%v)", dist, debs, entries)
	}
	t.Cleanup(func() {
		out, err := exec.Command("dpkg", "-P", "rtunnel").CombinedOutput()
		t.Logf("dpkg -P rtunnel: %v\n%s", err, out)
		os.RemoveAll("/etc/rtunnel")
	})
	t.Logf("dpkg -i:\n%s", run(t, "dpkg", "-i", debs[0]))

	if v := run(t, "/usr/bin/rtunnel", "version"); !strings.HasPrefix(v, "rtunnel ") || !strings.Contains(v, "golang.org/x/crypto v0.") {
		t.Errorf("rtunnel version printed %q", v)
	}
	fi, err := os.Stat("/etc/rtunnel/rtunnel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("/etc/rtunnel/rtunnel.yaml mode %04o, want 0640", fi.Mode().Perm())
	}
	for _, f := range []string{"/usr/lib/systemd/system/rtunnel.service", "/usr/lib/systemd/system/rtunnel@.service"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s not installed: %v", f, err)
		}
	}
	run(t, "id", "rtunnel")

	// The example names /etc/rtunnel/id_ed25519 and known_hosts: without
	// them check must say so (exit 78) ...
	out, err := exec.Command("/usr/bin/rtunnel", "check", "--config", "/etc/rtunnel/rtunnel.yaml").CombinedOutput()
	if code := exitCode(err); code != 78 || !strings.Contains(string(out), "/etc/rtunnel/id_ed25519") {
		t.Errorf("check without a key: exit %d, output %q; want 78 naming the key file", code, out)
	}
	// ... and with them, as the rtunnel user, print ok.
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/etc/rtunnel/id_ed25519")
	run(t, "chown", "rtunnel:rtunnel", "/etc/rtunnel/id_ed25519")
	cfg, _ := os.ReadFile("/etc/rtunnel/rtunnel.yaml")
	host := "master.example.org"
	port := "3333"
	if !strings.Contains(string(cfg), host+":"+port) {
		t.Fatalf("the example config no longer names %s:%s; update this test", host, port)
	}
	pub, _ := os.ReadFile("/etc/rtunnel/id_ed25519.pub")
	f := strings.Fields(string(pub))
	if err := os.WriteFile("/etc/rtunnel/known_hosts", []byte("["+host+"]:"+port+" "+f[0]+" "+f[1]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "runuser", "-u", "rtunnel", "--", "/usr/bin/rtunnel", "check", "--config", "/etc/rtunnel/rtunnel.yaml"); strings.TrimSpace(out) != "ok" {
		t.Errorf("rtunnel check as the rtunnel user: %q, want ok", out)
	}
	t.Logf("dpkg -r:\n%s", run(t, "dpkg", "-r", "rtunnel"))
	if _, err := os.Stat("/usr/bin/rtunnel"); err == nil {
		t.Errorf("/usr/bin/rtunnel still there after dpkg -r")
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
