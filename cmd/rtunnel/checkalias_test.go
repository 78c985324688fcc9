package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// rtunnel check prints what an ssh_config alias resolved to, one line per
// value with the file:line it came from, the new identity and trust keys
// included.
func TestCheckShowsAliasResolution(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ssh_config", `Host hub
    HostName hub.example.net
    User tunnel
    IdentityFile `+dir+`/id_hub
    CertificateFile `+dir+`/id_hub-cert.pub
    IdentityAgent SSH_AUTH_SOCK
    HostKeyAlias hub-key
    StrictHostKeyChecking accept-new
    HashKnownHosts yes
    UserKnownHostsFile `+dir+`/known_hosts
    RemoteForward 2220 localhost:22
    RemoteForward 0 localhost:8080
`)
	cfgPath := writeFile(t, dir, "rtunnel.yaml", "ssh_config: ssh_config\ntunnels:\n  - name: hub\n    server: hub\n")
	// The key and certificate files are not keys: check lists that as
	// problems (exit 78), after showing what the alias resolved to.
	writeFile(t, dir, "id_hub", "not a key\n")
	code, out, _ := runCmd(t, "check", "--config", cfgPath)
	if code != exitConfig {
		t.Errorf("exit %d, want 78 for the missing key files", code)
	}
	sc := filepath.Join(dir, "ssh_config")
	want := [][3]string{
		{"server:", "tunnel@hub.example.net:22", sc + ":2 HostName, " + sc + ":3 User, default Port"},
		{"identity_agent:", "SSH_AUTH_SOCK", sc + ":6 IdentityAgent"},
		{"identity:", dir + "/id_hub", sc + ":4 IdentityFile (with IdentityAgent only these keys are offered, as IdentitiesOnly yes; ssh also offers the agent's other keys)"},
		{"certificate:", dir + "/id_hub-cert.pub", sc + ":5 CertificateFile"},
		{"host_key_alias:", "hub-key", sc + ":7 HostKeyAlias"},
		{"strict_host_key_checking:", "accept-new", sc + ":8 StrictHostKeyChecking"},
		{"hash_known_hosts:", "true", sc + ":9 HashKnownHosts"},
		{"known_hosts:", dir + "/known_hosts", sc + ":10 UserKnownHostsFile"},
		{"forwards:", "localhost:2220->localhost:22", sc + ":11 RemoteForward"},
		{"forwards:", "localhost:0->localhost:8080", sc + ":12 RemoteForward"},
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(out, "tunnel hub: server hub resolved through "+sc+":\n") {
		t.Fatalf("output does not start with the alias and its file:\n%s", out)
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 3 || f[0] != w[0] || f[1] != w[1] {
				continue
			}
			found = true
			if got := strings.TrimSpace(l[strings.Index(l, w[1])+len(w[1]):]); got != w[2] {
				t.Errorf("%s %s: from %q, want %q", w[0], w[1], got, w[2])
			}
		}
		if !found {
			t.Errorf("no line %s %s in:\n%s", w[0], w[1], out)
		}
	}
}
