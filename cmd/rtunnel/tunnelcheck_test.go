package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tunnel whose files are missing stops alone; a cipher name nothing
// implements is a mistake in the file and refuses it whole, as before.
func TestLoadTunnelsSplitsFileProblemsFromConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(extra string) string {
		t.Helper()
		path := filepath.Join(dir, "rtunnel.yaml")
		cfg := `tunnels:
  - name: broken
    server: u@hub:22
    identity: ` + filepath.Join(dir, "missing-key") + `
    known_hosts: ` + filepath.Join(dir, "missing-kh") + `
    forwards: [{remote: "localhost:2220", local: "localhost:22"}]
` + extra
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfg, byTunnel, problems := loadTunnels(write(""))
	if cfg == nil || len(byTunnel) != 1 || byTunnel["broken"] == nil || len(problems) == 0 {
		t.Fatalf("missing files: cfg %v, by tunnel %v, problems %v", cfg != nil, byTunnel, problems)
	}
	if msg := byTunnel["broken"].Error(); !strings.Contains(msg, "rtunnel.yaml:2: tunnel broken: ") || !strings.Contains(msg, "missing-key") {
		t.Errorf("the problem does not name the file, line and key: %q", msg)
	}
	cfg, _, problems = loadTunnels(write("    ciphers: no-such-cipher\n"))
	if cfg != nil || len(problems) != 1 || !strings.Contains(problems[0].Error(), "no-such-cipher") {
		t.Errorf("an unknown cipher: cfg %v, problems %v; want the file refused", cfg != nil, problems)
	}
}
