package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A fleet file on the master: one tunnel per remote, all to the vpn.
const fleetYAML = `tunnels:
  - name: remote-a
    server: tunnel@203.0.113.50:22
    identity: id
    known_hosts: kh
    forwards: [{remote: localhost:2220, local: localhost:22}]
  - name: remote-b
    server: tunnel@203.0.113.50:22
    identity: id
    known_hosts: kh
    forwards: [{remote: localhost:2221, local: localhost:22}]
  - name: nas
    server: tunnel@203.0.113.50:22
    identity: id
    known_hosts: kh
    forwards:
      - {remote: localhost:2222, local: 10.0.0.50:22}
      - {remote: localhost:8080, local: 10.0.0.50:80}
`

func TestSSHConfigAppendixB(t *testing.T) {
	dir := t.TempDir()
	fleet := writeFile(t, dir, "fleet.yaml", fleetYAML)
	code, out, errOut := runCmd(t, "ssh-config", "--config", fleet, "--user", "admin", "--user-for", "remote-b=pi", "--jump-user", "vpnuser")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `# Written by rtunnel ssh-config from ` + fleet + `; append to ~/.ssh/config on the master.

# Jump host: the server the tunnels forward on (shared by all remote entries)
Host vpn-jump
    HostName 203.0.113.50
    Port 22
    User vpnuser

# remote-a: localhost:2220 on 203.0.113.50 -> localhost:22 (tunnel remote-a in ` + fleet + `)
Host remote-a
    HostName localhost
    Port 2220
    User admin
    ProxyJump vpn-jump

# remote-b: localhost:2221 on 203.0.113.50 -> localhost:22 (tunnel remote-b in ` + fleet + `)
Host remote-b
    HostName localhost
    Port 2221
    User pi
    ProxyJump vpn-jump

# nas-2222: localhost:2222 on 203.0.113.50 -> 10.0.0.50:22 (tunnel nas in ` + fleet + `)
Host nas-2222
    HostName localhost
    Port 2222
    User admin
    ProxyJump vpn-jump

# nas-8080: localhost:8080 on 203.0.113.50 -> 10.0.0.50:80 (tunnel nas in ` + fleet + `)
Host nas-8080
    HostName localhost
    Port 8080
    User admin
    ProxyJump vpn-jump
`
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestSSHConfigOnServerAndJumps(t *testing.T) {
	dir := t.TempDir()
	// Appendix A, the remote's config: master's sshd through the vpn.
	a := writeFile(t, dir, "a.yaml", `tunnels:
  - name: remote-a
    server: alice@localhost:2210
    jump: tunnel@203.0.113.50
    identity: id
    known_hosts: kh
    forwards: [{remote: localhost:2220, local: localhost:22}]
`)
	code, out, errOut := runCmd(t, "ssh-config", "--config", a, "--on-server", "--identity", "~/.ssh/id_ed25519")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "ProxyJump") || strings.Contains(out, "Host vpn-jump") {
		t.Errorf("--on-server printed a jump:\n%s", out)
	}
	for _, w := range []string{"Host remote-a\n    HostName localhost\n    Port 2220\n    IdentityFile ~/.ssh/id_ed25519\n    IdentitiesOnly yes\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	// Without --on-server the server (master via the vpn) becomes the jump host.
	_, out, _ = runCmd(t, "ssh-config", "--config", a)
	for _, w := range []string{"Host vpn-jump\n    HostName localhost\n    Port 2210\n    User alice\n    ProxyJump tunnel@203.0.113.50:22\n",
		"Host remote-a\n    HostName localhost\n    Port 2220\n    ProxyJump vpn-jump\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestSSHConfigErrors(t *testing.T) {
	dir := t.TempDir()
	fleet := writeFile(t, dir, "fleet.yaml", fleetYAML)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"ssh-config"}, "--config FILE is required"},
		{[]string{"ssh-config", "--config", fleet, "--config", fleet}, "two Host blocks named remote-a"},
		{[]string{"ssh-config", "--config", fleet, "--user-for", "remote-z=pi"}, "no such Host"},
		{[]string{"ssh-config", "--config", fleet, "--user-for", "remote-a"}, "want HOST=USER"},
		{[]string{"ssh-config", "--config", filepath.Join(dir, "missing.yaml")}, "cannot read config"},
	}
	for _, c := range cases {
		code, out, errOut := runCmd(t, c.args...)
		if code != exitConfig || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 78 and %q", c.args, code, out, errOut, c.want)
		}
	}
}
