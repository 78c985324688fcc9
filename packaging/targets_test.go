package packaging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// target is one row of scripts/release.sh's table, read through
// `release.sh --list` so the tests and the release cannot drift apart.
type target struct {
	name, goarch, variant string // variant: "GOARM=7", "GOMIPS=softfloat" or "-"
	deb, rpm, apk, ipk    string // nfpm arch names, "-" for none
}

func releaseTargets(t *testing.T) []target {
	t.Helper()
	out := run(t, "bash", filepath.Join(repoRoot(t), "scripts", "release.sh"), "--list")
	var ts []target
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 7 {
			t.Fatalf("release.sh --list: %q has %d fields, want 7", line, len(f))
		}
		ts = append(ts, target{f[0], f[1], f[2], f[3], f[4], f[5], f[6]})
	}
	if len(ts) < 8 {
		t.Fatalf("release.sh --list gave %d targets, want the 8 of issue 13", len(ts))
	}
	return ts
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// releaseDir is the output of a full `scripts/release.sh` that `make
// release-test` made and names in RTUNNEL_RELEASE_DIR; the tests that inspect
// a release skip without it (make test does not build the whole release).
func releaseDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RTUNNEL_RELEASE_DIR")
	if dir == "" {
		t.Skip("needs a built release: make release-test (RTUNNEL_RELEASE_DIR)")
	}
	if _, err := os.Stat(filepath.Join(dir, "SHA256SUMS")); err != nil {
		t.Fatalf("RTUNNEL_RELEASE_DIR=%s holds no finished release: %v", dir, err)
	}
	return dir
}

// releaseFile is the one file in dir matching pattern.
func releaseFile(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) != 1 {
		t.Fatalf("want one %s in %s, found %v", pattern, dir, m)
	}
	return m[0]
}
