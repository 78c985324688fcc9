package packaging

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPackageVersions pins packaging/pkgversion.sh: what dpkg, rpm and opkg
// get (pkg_version) and what apk gets (apk_version, no '~' or '+').
func TestPackageVersions(t *testing.T) {
	lib := filepath.Join(repoRoot(t), "packaging", "pkgversion.sh")
	const epoch = "1796565600" // 2026-12-06 14:00:00 UTC
	for _, c := range []struct{ describe, pkg, apk string }{
		{"v1.2.3", "1.2.3", "1.2.3"},
		{"v1.2.3-4-gabc1234", "1.2.3+git4.abc1234", "1.2.3_p4"},
		{"v1.3.0-rc1", "1.3.0~rc1", "1.3.0_rc1"},
		{"v1.3.0-beta2", "1.3.0~beta2", "1.3.0_beta2"},
		{"v1.3.0-rc1-2-gabc1234", "1.3.0~rc1+git2.abc1234", "1.3.0_rc1_p2"},
		{"v1.2.3-dirty", "1.2.3+dirty", "1.2.3"},
		{"fe3e7b0", "0.0.0~gitfe3e7b0", "0.0.0_git20261206140000"},
		{"fe3e7b0-dirty", "0.0.0~gitfe3e7b0+dirty", "0.0.0_git20261206140000"},
		{"dev", "0.0.0~dev", "0.0.0_git20261206140000"},
	} {
		out, err := exec.Command("sh", "-c", `. "$0"; pkg_version "$1"; apk_version "$1" "$2"`, lib, c.describe, epoch).Output()
		if err != nil {
			t.Fatalf("%s: %v", c.describe, err)
		}
		if want := c.pkg + "\n" + c.apk + "\n"; string(out) != want {
			t.Errorf("%s: got %q, want %q", c.describe, out, want)
		}
	}
}
