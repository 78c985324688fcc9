package sshconfig

import (
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// copyTestdata writes testdata into a fresh directory with @DIR@ replaced
// by that directory (Include lines need absolute paths) and modes ssh
// accepts for included files.
func copyTestdata(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir("testdata", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), []byte(strings.ReplaceAll(string(data), "@DIR@", dir)), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// localOptions are the facts ssh takes from the process running the test.
func localOptions(t *testing.T) Options {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return Options{LocalUser: u.Username, Home: u.HomeDir, UID: os.Getuid(), LocalHost: host}
}

func requireSSH(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("RTUNNEL_REQUIRE_SSHD") == "1" {
			t.Fatalf("ssh not found (RTUNNEL_REQUIRE_SSHD=1): %v", err)
		}
		t.Skip("ssh not installed: OpenSSH is the oracle")
	}
	return p
}

// sshG runs ssh -G and returns its output keyed by option; repeated options
// (identityfile, remoteforward) keep every line in order.
func sshG(t *testing.T, ssh, file, alias, user string, port int) map[string][]string {
	t.Helper()
	args := []string{"-G", "-F", file}
	if user != "" {
		args = append(args, "-l", user)
	}
	if port != 0 {
		args = append(args, "-p", strconv.Itoa(port))
	}
	cmd := exec.Command(ssh, append(args, alias)...)
	cmd.Stdin = nil
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ssh %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	got := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok {
			got[k] = append(got[k], v)
		}
	}
	return got
}

// asSSHG writes what rtunnel resolved in ssh -G's words, for the options
// rtunnel uses. Options ssh prints with its own defaults that rtunnel does
// not share (the default identity files, algorithm lists with +/-/^) are
// left out.
func asSSHG(t *testing.T, h *Host) map[string][]string {
	t.Helper()
	yesno := func(b bool) []string {
		if b {
			return []string{"yes"}
		}
		return []string{"no"}
	}
	m := map[string][]string{
		"hostname":              {h.HostName},
		"port":                  {strconv.Itoa(h.Port)},
		"user":                  {h.User},
		"identitiesonly":        yesno(h.IdentitiesOnly),
		"exitonforwardfailure":  yesno(h.ExitOnForwardFailure),
		"hashknownhosts":        yesno(h.HashKnownHosts),
		"userknownhostsfile":    {strings.Join(h.UserKnownHostsFiles, " ")},
		"globalknownhostsfile":  {strings.Join(h.GlobalKnownHostsFiles, " ")},
		"stricthostkeychecking": {h.StrictHostKeyChecking},
		"serveraliveinterval":   {strconv.Itoa(h.ServerAliveInterval)},
		"serveralivecountmax":   {strconv.Itoa(h.ServerAliveCountMax)},
		"connecttimeout":        {"none"},
	}
	if _, ok := h.Set["connecttimeout"]; ok {
		m["connecttimeout"] = []string{strconv.Itoa(h.ConnectTimeout)}
	}
	if len(h.IdentityFiles) > 0 {
		m["identityfile"] = h.IdentityFiles
	}
	if len(h.CertificateFiles) > 0 {
		m["certificatefile"] = h.CertificateFiles
	}
	if h.IdentityAgent != "" {
		m["identityagent"] = []string{h.IdentityAgent}
	}
	if h.HostKeyAlias != "" {
		m["hostkeyalias"] = []string{h.HostKeyAlias}
	}
	if h.ProxyJump != "" {
		m["proxyjump"] = []string{h.ProxyJump}
	}
	for _, f := range h.RemoteForwards {
		m["remoteforward"] = append(m["remoteforward"], f.String())
	}
	for _, f := range h.LocalForwards {
		m["localforward"] = append(m["localforward"], f.String())
	}
	for k, v := range map[string]string{"ciphers": h.Ciphers, "kexalgorithms": h.KexAlgorithms, "macs": h.MACs, "hostkeyalgorithms": h.HostKeyAlgorithms} {
		if v != "" && !strings.ContainsAny(v[:1], "+-^") {
			m[k] = []string{v}
		}
	}
	return m
}

// compareWithSSH checks every option asSSHG gives against ssh -G's line(s).
func compareWithSSH(t *testing.T, label string, h *Host, ssh map[string][]string) {
	t.Helper()
	for k, want := range asSSHG(t, h) {
		if !reflect.DeepEqual(ssh[k], want) {
			t.Errorf("%s: %s: rtunnel resolved %q, ssh -G says %q", label, k, want, ssh[k])
		}
	}
	// What ssh prints that rtunnel left unset must be a default rtunnel shares.
	for _, k := range []string{"remoteforward", "localforward", "certificatefile", "identityagent", "hostkeyalias", "proxyjump"} {
		if _, ours := asSSHG(t, h)[k]; !ours && len(ssh[k]) > 0 {
			t.Errorf("%s: %s: ssh -G says %q, rtunnel resolved nothing", label, k, ssh[k])
		}
	}
}

// The oracle: for each alias, what Resolve gives equals ssh -G's output for
// the same file, alias and -l/-p; each ProxyJump hop equals ssh -G for that
// hop as ssh would run it.
func TestResolveMatchesSSHG(t *testing.T) {
	ssh := requireSSH(t)
	dir := copyTestdata(t)
	opts := localOptions(t)
	cases := []struct {
		file, alias string
		user        string
		port        int
		hops        []string // expected chain: user@hostname:port, first dialed first
	}{
		{file: "guide.conf", alias: "vpn"},
		{file: "guide.conf", alias: "vpn-v6"},
		{file: "guide.conf", alias: "unlisted.example.com"},
		{file: "guide.conf", alias: "vpn", user: "override", port: 2022},
		{file: "patterns.conf", alias: "pc.lan"},
		{file: "patterns.conf", alias: "nas.lan"},
		{file: "patterns.conf", alias: "nas"},
		{file: "patterns.conf", alias: "web1"},
		{file: "patterns.conf", alias: "web1", user: "deploy"},
		{file: "patterns.conf", alias: "web2"},
		{file: "patterns.conf", alias: "FOO"},
		{file: "patterns.conf", alias: "foo"},
		{file: "patterns.conf", alias: "box", user: "admin"},
		{file: "include.conf", alias: "base"},
		{file: "include.conf", alias: "hub"},
		{file: "include.conf", alias: "hub-b"},
		{file: "include.conf", alias: "other"},
		{file: "tokens.conf", alias: "tok"},
		{file: "tokens.conf", alias: "ctl"},
		{file: "tokens.conf", alias: "plain.example.net"},
		{file: "syntax.conf", alias: "quoted"},
		{file: "syntax.conf", alias: "pct"},
		{file: "syntax.conf", alias: "only-negated"},
		{file: "syntax.conf", alias: "elsewhere"},
		{file: "algorithms.conf", alias: "strict"},
		{file: "algorithms.conf", alias: "relaxed"},
		{file: "jumps.conf", alias: "remote-7", hops: []string{"jump1@bastion.example.com:22", "jump2@10.10.0.2:2202"}},
		{file: "jumps.conf", alias: "remote-8", hops: []string{"alice@bastion.example.com:2201", "jump2@10.10.0.2:2202"}},
		{file: "jumps.conf", alias: "ipv6-hop", hops: []string{opts.LocalUser + "@2001:db8::1:2222"}},
	}
	for _, c := range cases {
		label := c.file + " " + c.alias
		if c.user != "" || c.port != 0 {
			label += " -l " + c.user + " -p " + strconv.Itoa(c.port)
		}
		t.Run(strings.ReplaceAll(label, " ", "_"), func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			o := opts
			o.User, o.Port = c.user, c.port
			h, err := Resolve(path, c.alias, o)
			if err != nil {
				t.Fatal(err)
			}
			compareWithSSH(t, label, h, sshG(t, ssh, path, c.alias, c.user, c.port))
			var chain []string
			for _, hop := range h.Jumps {
				chain = append(chain, hop.User+"@"+hop.HostName+":"+strconv.Itoa(hop.Port))
				hopSSH := sshG(t, ssh, path, hop.Alias, hop.JumpUser, hop.JumpPort)
				// The hop's own ProxyJump is ssh's business when it runs the
				// hop; the chain above is what rtunnel dials.
				delete(hopSSH, "proxyjump")
				hopCopy := *hop
				hopCopy.ProxyJump = ""
				compareWithSSH(t, label+" hop "+hop.Alias, &hopCopy, hopSSH)
			}
			if !reflect.DeepEqual(chain, c.hops) {
				t.Errorf("%s: ProxyJump chain %q, want %q", label, chain, c.hops)
			}
		})
	}
}
