package main

import (
	"os"
	"strings"
	"testing"
)

// TestControlSocketPathsMatchTheUnits: the socket `rtunnel up` opens in the
// unit's RuntimeDirectory is the one `rtunnel status` asks by default, for
// the plain unit and for the template.
func TestControlSocketPathsMatchTheUnits(t *testing.T) {
	for unit, want := range map[string]string{
		"rtunnel.service":  "RuntimeDirectory=rtunnel\n",
		"rtunnel@.service": "RuntimeDirectory=rtunnel-%i\n",
	} {
		b, err := os.ReadFile("../../packaging/systemd/" + unit)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) || strings.Count(string(b), "RuntimeDirectory=") != 1 {
			t.Errorf("%s: want exactly one RuntimeDirectory=, %q", unit, want)
		}
	}
	t.Setenv("RUNTIME_DIRECTORY", "")
	if got := controlSocketPath(); got != "/run/rtunnel/control.sock" {
		t.Errorf("default socket %s", got)
	}
	t.Setenv("RUNTIME_DIRECTORY", "/run/rtunnel-vpn:/run/other")
	if got, want := controlSocketPath(), instanceSocket("vpn"); got != want || want != "/run/rtunnel-vpn/control.sock" {
		t.Errorf("rtunnel@vpn's socket: up opens %s, status --instance vpn asks %s", got, want)
	}
}
