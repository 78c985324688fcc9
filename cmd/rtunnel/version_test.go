package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{
		Deps: []*debug.Module{{Path: "golang.org/x/crypto", Version: "v0.59.0"}},
		Settings: []debug.BuildSetting{
			{Key: "GOARCH", Value: "arm"},
			{Key: "GOARM", Value: "7"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-06T14:00:00Z"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	want := "rtunnel v1.2.3\ngo go1.26.8\n" +
		"revision 0123456789abcdef0123456789abcdef01234567 2026-12-06T14:00:00Z\n" +
		"target " + runtime.GOOS + "/" + runtime.GOARCH + " GOARM=7\n" +
		"golang.org/x/crypto v0.59.0\n"
	if got := versionText("v1.2.3", "", "go1.26.8", bi); got != want {
		t.Errorf("versionText:\n%s\nwant:\n%s", got, want)
	}
}

func TestVersionTextWithoutBuildInfo(t *testing.T) {
	want := "rtunnel dev\ngo go1.26.8\nrevision unknown\ntarget " + runtime.GOOS + "/" + runtime.GOARCH + "\ngolang.org/x/crypto unknown\n"
	if got := versionText("dev", "", "go1.26.8", nil); got != want {
		t.Errorf("versionText(nil):\n%s\nwant:\n%s", got, want)
	}
}

func TestRevisionModified(t *testing.T) {
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc"},
		{Key: "vcs.modified", Value: "true"},
	}}
	if got := revision("", bi); got != "abc (modified)" {
		t.Errorf("revision = %q, want %q", got, "abc (modified)")
	}
	// The commit the release build sets wins over go's own stamping.
	if got := revision("def", bi); got != "def" {
		t.Errorf("revision with commit set = %q, want %q", got, "def")
	}
}
