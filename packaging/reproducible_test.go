package packaging

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseReproducible builds the arm64 and mipsle part of the release
// again and wants every file byte for byte as in the release: binaries,
// .deb/.rpm/.apk/.ipk and tarballs. That run reuses the build cache, so it
// pins the link and the packaging; the arm64 binary is then compiled once
// more from an empty build cache, which pins the compile too.
func TestReleaseReproducible(t *testing.T) {
	dir := releaseDir(t)
	again := t.TempDir()
	cmd := exec.Command("bash", "scripts/release.sh")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "RELEASE_DIR="+again, "RELEASE_TARGETS=arm64 mipsle")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh again: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(again, "*"))
	compared := 0
	for _, f := range files {
		name := filepath.Base(f)
		if name == "SHA256SUMS" {
			continue
		}
		want := sha256File(t, filepath.Join(dir, name))
		if got := sha256File(t, f); got != want {
			t.Errorf("%s: sha256 %s, the release has %s", name, got, want)
		}
		compared++
	}
	// arm64: binary, deb, rpm, apk, ipk, tarball; mipsle: binary, ipk, tarball.
	if compared != 9 {
		t.Errorf("compared %d files, want 9: %v", compared, files)
	}

	fresh := t.TempDir()
	cmd = exec.Command("bash", "scripts/release.sh", "--binaries-only")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "RELEASE_DIR="+fresh, "RELEASE_TARGETS=arm64", "GOCACHE="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh --binaries-only with an empty build cache: %v\n%s", err, out)
	}
	bin := releaseFile(t, fresh, "rtunnel-*-linux-arm64")
	if got, want := sha256File(t, bin), sha256File(t, filepath.Join(dir, filepath.Base(bin))); got != want {
		t.Errorf("arm64 from an empty build cache: sha256 %s, the release has %s", got, want)
	}

	// SHA256SUMS of the release names every file and its lines hold.
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if n := strings.Count(string(sums), "\n"); n != len(entries)-1 {
		t.Errorf("SHA256SUMS has %d lines, the release %d other files", n, len(entries)-1)
	}
	check := exec.Command("sha256sum", "--check", "--strict", "SHA256SUMS")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum --check: %v\n%s", err, out)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
