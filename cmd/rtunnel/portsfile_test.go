package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The ports file lists the up port-0 forwards in config order, follows
// each change, goes when none is up, and leaves no temporary file.
func TestPortsFile(t *testing.T) {
	dir := t.TempDir()
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	p := newPortsFile(dir, "hub", []string{"localhost:0->localhost:22", "localhost:2220->localhost:22", "localhost:0->localhost:80"}, log)
	path := filepath.Join(dir, "hub.ports")
	read := func() string {
		t.Helper()
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return "(none)"
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	steps := []struct {
		forward string
		port    int
		want    string
	}{
		{"localhost:0->localhost:80", 40001, "localhost:0->localhost:80 40001\n"},
		{"localhost:0->localhost:22", 40002, "localhost:0->localhost:22 40002\nlocalhost:0->localhost:80 40001\n"},
		{"localhost:0->localhost:80", 0, "localhost:0->localhost:22 40002\n"},
		{"localhost:0->localhost:22", 40003, "localhost:0->localhost:22 40003\n"}, // a new session, a new port
		{"localhost:0->localhost:22", 0, "(none)"},
	}
	for _, s := range steps {
		p.set(s.forward, s.port)
		if got := read(); got != s.want {
			t.Fatalf("after %s=%d: file %q, want %q", s.forward, s.port, got, s.want)
		}
	}
	p.set("localhost:0->localhost:22", 40004)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", fi.Mode().Perm(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only hub.ports (no temporary file left)", len(entries))
	}
	if logged.Len() != 0 {
		t.Errorf("logged %q", logged.String())
	}
}

// A directory it cannot write to is logged once, never fatal; without a
// runtime directory nothing is written.
func TestPortsFileUnwritable(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	p := newPortsFile(filepath.Join(t.TempDir(), "missing"), "hub", []string{"localhost:0->localhost:22"}, log)
	p.set("localhost:0->localhost:22", 40001)
	p.set("localhost:0->localhost:22", 40002)
	if n := strings.Count(logged.String(), "cannot write the allocated ports file"); n != 1 {
		t.Errorf("logged the failure %d times, want once: %s", n, logged.String())
	}
	t.Setenv("RUNTIME_DIRECTORY", "")
	if d := runtimeDir(); d != "" {
		t.Errorf("runtimeDir() = %q without RUNTIME_DIRECTORY", d)
	}
	t.Setenv("RUNTIME_DIRECTORY", "/run/rtunnel:/run/other")
	if d := runtimeDir(); d != "/run/rtunnel" {
		t.Errorf("runtimeDir() = %q, want the first of several", d)
	}
}
