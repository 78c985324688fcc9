package systemdtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireSystemdTest skips unless RTUNNEL_SYSTEMD_TEST=1 (`make
// systemd-test` sets it): the test boots a container, needs root, and takes
// minutes. Once asked for, a missing tool is a failure, not a skip.
func requireSystemdTest(t *testing.T) {
	t.Helper()
	if os.Getenv("RTUNNEL_SYSTEMD_TEST") != "1" {
		t.Skip("boots a systemd container: run `make systemd-test` (RTUNNEL_SYSTEMD_TEST=1, as root)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the systemd test needs root (debootstrap, overlay mount, systemd-nspawn, nsenter)")
	}
	for _, tool := range []string{"systemd-nspawn", "debootstrap", "nsenter", "unshare", "ssh-keygen", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing: run scripts/install-deps.sh --systemd", tool)
		}
	}
}

// cachedRoot returns the container root, building it on first use.
func cachedRoot(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "mkroot.sh")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mkroot.sh: %v", err)
	}
	return string(regexp.MustCompile(`\s+$`).ReplaceAll(out, nil))
}

var createdDeb = regexp.MustCompile(`created package: (\S+\.deb)`)

// buildDeb builds the .deb of this checkout with packaging/package.sh.
func buildDeb(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "packaging/package.sh")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "PACKAGERS=deb")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("packaging/package.sh: %v\n%s", err, out)
	}
	m := createdDeb.FindSubmatch(out)
	if m == nil {
		t.Fatalf("packaging/package.sh named no .deb:\n%s", out)
	}
	return filepath.Join("../..", string(m[1]))
}
