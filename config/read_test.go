package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goodYAML is a valid config; tests copy it to files with the mode, owner
// and kind they need.
const goodYAML = `tunnels:
  - name: a
    server: u@h
    identity: /etc/rtunnel/id
    known_hosts: /etc/rtunnel/known_hosts
    forwards: [{remote: "localhost:1", local: "localhost:2"}]
`

func writeConfig(t *testing.T, data string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rtunnel.yaml")
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode passes through the umask; the tests need it exact.
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadBounded runs Load and fails the test when it takes longer than
// maxTime or allocates more than limit bytes.
func loadBounded(t *testing.T, path string, maxTime time.Duration, limit uint64) (*Config, error) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	cfg, err := Load(path)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if took > maxTime {
		t.Errorf("Load(%s) took %v, want at most %v", path, took, maxTime)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit {
		t.Errorf("Load(%s) allocated %d bytes, want at most %d", path, alloc, limit)
	}
	return cfg, err
}

func TestLoadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link-to-zero")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	const why = ", not a regular file: rtunnel reads its config only from a regular file; name the YAML file itself"
	for path, kind := range map[string]string{
		"/dev/zero": "a character device",
		link:        "a character device",
		fifo:        "a named pipe (FIFO)", // no writer: a blocking open would never return
		dir:         "a directory",
	} {
		_, err := loadBounded(t, path, time.Second, 64<<10)
		if want := path + ": is " + kind + why; err == nil || err.Error() != want {
			t.Errorf("Load(%s):\n got %v\nwant %s", path, err, want)
		}
	}
}

func TestLoadReadsAtMostMaxFileSize(t *testing.T) {
	// Exactly MaxFileSize bytes, padded with a comment, still loads.
	pad := MaxFileSize - len(goodYAML) - len("#\n")
	path := writeConfig(t, goodYAML+"#"+strings.Repeat("x", pad)+"\n", 0o600)
	// Parsing a whole MiB under -race on a busy machine can take a second.
	if _, err := loadBounded(t, path, 30*time.Second, 16*MaxFileSize); err != nil {
		t.Errorf("a file of exactly MaxFileSize bytes: %v", err)
	}
	// One byte more is refused, even when the file is far bigger (sparse).
	for _, size := range []int64{MaxFileSize + 1, 1 << 40} {
		path := writeConfig(t, goodYAML, 0o600)
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		_, err := loadBounded(t, path, time.Second, 8*MaxFileSize)
		if want := path + ": is larger than 1024 KiB, far more than any config needs: is this the right file?"; err == nil || err.Error() != want {
			t.Errorf("%d bytes:\n got %v\nwant %s", size, err, want)
		}
	}
}

func TestLoadFollowsSymlinks(t *testing.T) {
	target := writeConfig(t, goodYAML, 0o640)
	link := filepath.Join(t.TempDir(), "rtunnel.yaml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != link || len(cfg.Tunnels) != 1 {
		t.Errorf("Load through a symlink: Path %q, %d tunnels", cfg.Path, len(cfg.Tunnels))
	}
}

func TestLoadRefusesWritableByOthers(t *testing.T) {
	for _, perm := range []os.FileMode{0o600, 0o640, 0o644, 0o400, 0o444} {
		if _, err := Load(writeConfig(t, goodYAML, perm)); err != nil {
			t.Errorf("mode %04o refused: %v", perm, err)
		}
	}
	for _, perm := range []os.FileMode{0o660, 0o602, 0o666, 0o620} {
		path := writeConfig(t, goodYAML, perm)
		_, err := Load(path)
		want := fmt.Sprintf("%s: is writable by group or others (mode %04o): whoever can write it can send the tunnels elsewhere; fix with chmod go-w %s", path, perm, path)
		if err == nil || err.Error() != want {
			t.Errorf("mode %04o:\n got %v\nwant %s", perm, err, want)
		}
	}
}

// throwawayUID owns no file on a test machine; chown needs root.
const throwawayUID = 12345

func TestLoadRefusesForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("RTUNNEL_REQUIRE_SSHD") == "1" {
			t.Fatal("chown to another user needs root (RTUNNEL_REQUIRE_SSHD=1, so this is a failure, not a skip)")
		}
		t.Skip("chown to another user needs root (set RTUNNEL_REQUIRE_SSHD=1 to fail instead)")
	}
	// The package's own file: root-owned, group rtunnel (any gid), 0640.
	pkg := writeConfig(t, goodYAML, 0o640)
	if err := os.Chown(pkg, 0, throwawayUID); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(pkg); err != nil {
		t.Errorf("root:group 0640 refused: %v", err)
	}

	foreign := writeConfig(t, goodYAML, 0o644)
	if err := os.Chown(foreign, throwawayUID, 0); err != nil {
		t.Fatal(err)
	}
	_, err := Load(foreign)
	want := fmt.Sprintf("%s: is owned by uid %d, neither root nor the user rtunnel runs as (uid 0): whoever owns it can send the tunnels elsewhere; fix with chown root %s",
		foreign, throwawayUID, foreign)
	if err == nil || err.Error() != want {
		t.Errorf("foreign owner:\n got %v\nwant %s", err, want)
	}

	// Both problems at once are both reported.
	if err := os.Chmod(foreign, 0o666); err != nil {
		t.Fatal(err)
	}
	_, err = Load(foreign)
	if errs, ok := err.(Errors); !ok || len(errs) != 2 {
		t.Errorf("foreign owner and mode 0666: got %v, want two errors", err)
	}
}

// TestLoadWorstCaseIsBounded loads a file of MaxFileSize bytes with a
// problem every two bytes, the worst of the shapes tried (unknown keys and
// bad tunnel mappings cost less). Before problems were capped at MaxErrors it
// allocated about 1 GiB and printed 50 MB of messages.
func TestLoadWorstCaseIsBounded(t *testing.T) {
	for name, data := range map[string]string{
		"empty tunnels": "tunnels: [" + strings.Repeat("~,", MaxFileSize/2-8) + "]\n",
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Load(writeConfig(t, data, 0o600))
			runtime.ReadMemStats(&after)
			// yaml.v3's node tree alone takes about 120 MiB for these.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 400<<20 {
				t.Errorf("allocated %d MiB, want at most 400", alloc>>20)
			}
			errs, ok := err.(Errors)
			if !ok || len(errs) != MaxErrors+1 {
				t.Fatalf("got %d problems listed (%T), want %d and a count of the rest", len(errs), err, MaxErrors+1)
			}
			last := errs[len(errs)-1]
			if last.More < 1000 || !strings.HasPrefix(last.Msg, fmt.Sprintf("... and %d more problems", last.More)) {
				t.Errorf("last problem %q (More %d), want the count of the rest", last.Msg, last.More)
			}
			if errs.Count() != MaxErrors+last.More {
				t.Errorf("Count() = %d, want %d", errs.Count(), MaxErrors+last.More)
			}
		})
	}
}
