package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// commit is set with -ldflags "-X main.commit=..." from git rev-parse HEAD by
// make release: go build's own VCS stamping finds no repository in a git
// worktree (.git is a file there), so the release does not rely on it.
var commit = ""

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print rtunnel's version, Go version, VCS revision, target and x/crypto version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			bi, _ := debug.ReadBuildInfo()
			fmt.Fprint(stdout, versionText(version, commit, runtime.Version(), bi))
			return nil
		},
	}
}

// versionText is what `rtunnel version` prints: enough to tell which build
// runs on a remote and to rebuild it (the target says which GOARM or GOMIPS
// variant a board needs).
func versionText(version, commit, goVersion string, bi *debug.BuildInfo) string {
	return fmt.Sprintf("rtunnel %s\ngo %s\nrevision %s\ntarget %s\ngolang.org/x/crypto %s\n",
		version, goVersion, revision(commit, bi), target(bi), moduleVersion(bi, "golang.org/x/crypto"))
}

// revision is the commit the binary was built from: the one the build set,
// else what `go build -buildvcs` recorded, else "unknown" (VCS stamping off,
// or a source tree without .git).
func revision(commit string, bi *debug.BuildInfo) string {
	if commit != "" {
		return commit
	}
	s := buildSettings(bi)
	rev := s["vcs.revision"]
	if rev == "" {
		return "unknown"
	}
	if s["vcs.modified"] == "true" {
		rev += " (modified)"
	}
	if t := s["vcs.time"]; t != "" {
		rev += " " + t
	}
	return rev
}

// target is GOOS/GOARCH and, where the toolchain records one, the
// architecture variant (GOARM=7, GOMIPS=softfloat, GOAMD64=v1): the variant
// decides whether a binary runs on a given board at all.
func target(bi *debug.BuildInfo) string {
	s := buildSettings(bi)
	t := runtime.GOOS + "/" + runtime.GOARCH
	for _, k := range []string{"GOARM", "GOARM64", "GOMIPS", "GOMIPS64", "GO386", "GOAMD64", "GORISCV64"} {
		if v := s[k]; v != "" {
			t += " " + k + "=" + v
		}
	}
	return t
}

func buildSettings(bi *debug.BuildInfo) map[string]string {
	m := map[string]string{}
	if bi == nil {
		return m
	}
	for _, s := range bi.Settings {
		m[s.Key] = s.Value
	}
	return m
}

func moduleVersion(bi *debug.BuildInfo, path string) string {
	if bi == nil {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return "unknown"
}
