package sshconfig

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeConf(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Directives that change how the connection is made are refused with
// file:line when they would apply, and pass when they would not.
func TestResolveRefuses(t *testing.T) {
	opts := localOptions(t)
	cases := []struct {
		name, text, alias string
		want              string // "" when Resolve must succeed
		unsupported       string
	}{
		{name: "proxycommand", text: "Host hub\n  ProxyCommand ssh -W %h:%p bastion\n", alias: "hub",
			want: ":2: ProxyCommand is not supported: it runs a command", unsupported: "ProxyCommand"},
		{name: "proxycommand other host", text: "Host other\n  ProxyCommand nc %h %p\nHost hub\n  Port 2\n", alias: "hub"},
		{name: "proxycommand after proxyjump", text: "Host hub\n  ProxyJump b\n  ProxyCommand nc %h %p\n", alias: "hub"},
		{name: "proxycommand none", text: "Host *\n  ProxyCommand none\n", alias: "hub"},
		{name: "match exec", text: "Host x\nMatch host hub exec \"test -f /etc/hub\"\n  Port 2\n", alias: "hub",
			want: ":2: Match exec is not supported", unsupported: "Match exec"},
		{name: "match exec not reached", text: "Match host other exec \"false\"\n  Port 2\n", alias: "hub"},
		{name: "dynamic remote forward", text: "Host hub\n  RemoteForward 1080\n", alias: "hub",
			want: ":2: RemoteForward 1080 is not supported", unsupported: "RemoteForward 1080"},
		{name: "knownhostscommand", text: "Host *\n\n  KnownHostsCommand /bin/x %H\n", alias: "hub",
			want: ":3: KnownHostsCommand is not supported", unsupported: "KnownHostsCommand"},
		{name: "canonicalize", text: "CanonicalizeHostname yes\n", alias: "hub",
			want: ":1: CanonicalizeHostname is not supported", unsupported: "CanonicalizeHostname"},
		{name: "canonicalize no", text: "CanonicalizeHostname no\nAddressFamily any\nPubkeyAuthentication yes\n", alias: "hub"},
		{name: "unknown keyword", text: "Host hub\n  Prot 22\n", alias: "hub", want: `:2: unknown keyword "prot"`},
		{name: "ignore unknown", text: "IgnoreUnknown prot,usekeychain\nHost hub\n  Prot 22\n", alias: "hub"},
		{name: "bad port", text: "Host hub\n  Port 70000\n", alias: "hub", want: `:2: Port "70000": want a number 1-65535`},
		{name: "bad forward", text: "Host hub\n  RemoteForward 2220 localhost\n", alias: "hub", want: ":2: remoteforward:"},
		{name: "bad match", text: "Match colour blue\n", alias: "hub", want: `:1: Match: "colour" is not supported`},
		{name: "quotes", text: "Host hub\n  User \"bob\n", alias: "hub", want: ":2: unbalanced quotes"},
		{name: "jump loop", text: "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n", alias: "a", want: "is there a loop"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			path := writeConf(t, t.TempDir(), "config", c.text)
			_, err := Resolve(path, c.alias, opts)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Resolve error %v, want one containing %q", err, c.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Unsupported != c.unsupported {
				t.Errorf("error %#v: Unsupported %q, want %q", err, e.Unsupported, c.unsupported)
			}
			if !strings.HasPrefix(err.Error(), path) {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

// A keyword ssh does not know fails both: a typo is never skipped.
func TestUnknownKeywordLikeSSH(t *testing.T) {
	ssh := requireSSH(t)
	dir := t.TempDir()
	bad := writeConf(t, dir, "bad", "Host hub\n  Prot 22\n")
	if err := exec.Command(ssh, "-G", "-F", bad, "hub").Run(); err == nil {
		t.Fatal("ssh -G accepted an unknown keyword; the test's premise is wrong")
	}
	if _, err := Resolve(bad, "hub", localOptions(t)); err == nil {
		t.Fatal("Resolve accepted an unknown keyword")
	}
}

// An included file others can write is refused, as ssh refuses it.
func TestIncludePermissions(t *testing.T) {
	dir := t.TempDir()
	inc := writeConf(t, dir, "inc.conf", "Port 2\n")
	if err := os.Chmod(inc, 0o666); err != nil {
		t.Fatal(err)
	}
	path := writeConf(t, dir, "config", "Include "+inc+"\n")
	_, err := Resolve(path, "hub", localOptions(t))
	if err == nil || !strings.Contains(err.Error(), "bad owner or permissions") || !strings.Contains(err.Error(), path+":1:") {
		t.Fatalf("Resolve: %v, want a permissions error at %s:1", err, path)
	}
}

// Include relative to ~/.ssh, as for ssh's user config.
func TestIncludeRelativeToHomeSSH(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh", "conf.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeConf(t, filepath.Join(home, ".ssh", "conf.d"), "hub.conf", "Host hub\n  Port 2345\n")
	path := writeConf(t, t.TempDir(), "config", "Include conf.d/*.conf\n")
	o := localOptions(t)
	o.Home = home
	h, err := Resolve(path, "hub", o)
	if err != nil {
		t.Fatal(err)
	}
	if h.Port != 2345 {
		t.Errorf("Port %d, want 2345 from ~/.ssh/conf.d/hub.conf", h.Port)
	}
}

func TestIncludeSelfIsBounded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	writeConf(t, dir, "config", "Include "+path+"\n")
	_, err := Resolve(path, "hub", localOptions(t))
	if err == nil || !strings.Contains(err.Error(), "nested more than 16 deep") {
		t.Fatalf("Resolve: %v, want the Include depth error", err)
	}
}

// A path naming a device is refused before it is read: ssh_config comes
// from an operator's YAML, and /dev/zero must not fill the daemon's memory.
func TestConfigFileMustBeRegular(t *testing.T) {
	if _, err := Resolve("/dev/zero", "hub", localOptions(t)); err == nil || !strings.Contains(err.Error(), "/dev/zero: cannot read ssh_config: not a regular file") {
		t.Errorf("Resolve(/dev/zero): %v", err)
	}
	if _, err := Resolve(os.DevNull, "hub", localOptions(t)); err != nil {
		t.Errorf("Resolve(/dev/null), as ssh -F /dev/null: %v", err)
	}
}
