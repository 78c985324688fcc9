package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFleetTargets(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "fleet.txt")
	if err := os.WriteFile(inv, []byte("# name ssh metrics\nremote-a 2221 9221\n\nremote-b 2222   # no metrics forward yet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "fleet-targets", "--inventory", inv, "--out", dir, "--hub", "vpn1")
	if code != 0 || !strings.HasPrefix(out, "2 remotes: 2 ssh_banner targets") || !strings.Contains(out, "1 metrics targets") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := map[string]string{
		fleetSSHFile: `[
  {
    "targets": [
      "127.0.0.1:2221"
    ],
    "labels": {
      "hub": "vpn1",
      "remote": "remote-a"
    }
  },
  {
    "targets": [
      "127.0.0.1:2222"
    ],
    "labels": {
      "hub": "vpn1",
      "remote": "remote-b"
    }
  }
]
`,
		fleetMetricsFile: `[
  {
    "targets": [
      "127.0.0.1:9221"
    ],
    "labels": {
      "hub": "vpn1",
      "remote": "remote-a"
    }
  }
]
`,
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != w {
			t.Errorf("%s: %v\n%s\nwant\n%s", name, err, got, w)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".rtunnel-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestFleetTargetsRefusesBadInventory(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ inventory, want string }{
		{"remote-a\n", "fleet.txt:1: want NAME SSH_PORT [METRICS_PORT], got 1 fields"},
		{"remote-a 2221\nremote-a 2222\n", `fleet.txt:2: remote "remote-a" is already on line 1`},
		{"remote-a 2221 9221\nremote-b 9221\n", "fleet.txt:2: port 9221 is already used on line 1"},
		{"remote-a 0\n", `fleet.txt:1: "0" is not a port`},
		{"remote a 2221\n", `fleet.txt:1: "a" is not a port`},
		{"-x 2221\n", `fleet.txt:1: name "-x"`},
		{"# nobody yet\n", "no remotes"},
	}
	for _, c := range cases {
		inv := filepath.Join(dir, "fleet.txt")
		if err := os.WriteFile(inv, []byte(c.inventory), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCmd(t, "fleet-targets", "--inventory", inv, "--out", dir, "--hub", "vpn1")
		if code != exitConfig || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 78 and %q", c.inventory, code, out, errOut, c.want)
		}
	}
	if code, _, errOut := runCmd(t, "fleet-targets", "--inventory", filepath.Join(dir, "fleet.txt")); code != exitConfig || !strings.Contains(errOut, "--out DIR") {
		t.Errorf("without --out: exit %d, stderr %q", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("remote-a 2221\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd(t, "fleet-targets", "--inventory", filepath.Join(dir, "ok.txt"), "--out", filepath.Join(dir, "missing")); code != exitFail || !strings.Contains(errOut, "missing") {
		t.Errorf("into a missing directory: exit %d, stderr %q; want exit 1", code, errOut)
	}
}
