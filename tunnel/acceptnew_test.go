package tunnel

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// strict_host_key_checking: accept-new against a real sshd: the unknown
// host's key is written in OpenSSH's format (hashed on request), which
// ssh-keygen -F finds and ssh accepts with StrictHostKeyChecking yes; a
// later change is refused and never written, as ssh refuses it.
func TestAcceptNew(t *testing.T) {
	h := startRealHub(t, "")
	key := sshdtest.NewKey(t, h.dir, "id", "ed25519")
	h.srv.SetAuthorizedKeys(t, []string{h.guideLine("", key.PublicLine)})
	name := "[127.0.0.1]:" + strconv.Itoa(h.srv.Port)
	hostKey := strings.Fields(h.srv.HostKeyPublicLines()[0])[1]

	learnOnce := func(t *testing.T, hash bool) string {
		t.Helper()
		kh := filepath.Join(t.TempDir(), "known_hosts") // absent: accept-new creates it, as ssh does
		l := &logs{}
		if err := sessionUp(t, New(h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: kh, AcceptNew: true, HashKnownHosts: hash}, l))); err != nil {
			t.Fatalf("rtunnel: %v", err)
		}
		if l.count("host was unknown: its key is now in known_hosts (strict_host_key_checking: accept-new); a later change of this key is refused") != 1 {
			t.Errorf("no log line for the learned key:\n%s", l.dump())
		}
		data, err := os.ReadFile(kh)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 1 || !strings.HasSuffix(lines[0], " ssh-ed25519 "+hostKey) {
			t.Fatalf("known_hosts holds %q, want one line for the hub's key", data)
		}
		if hashed := strings.HasPrefix(lines[0], "|1|"); hashed != hash {
			t.Errorf("line %q: hashed %v, want %v", lines[0], hashed, hash)
		} else if !hash && !strings.HasPrefix(lines[0], name+" ") {
			t.Errorf("line %q, want it under %s", lines[0], name)
		}
		if out := tool(t, nil, "ssh-keygen", "-F", name, "-f", kh); !strings.Contains(out, hostKey) {
			t.Errorf("ssh-keygen -F %s does not find the key:\n%s", name, out)
		}
		if code, stderr := h.sshExit(t, nil, "UserKnownHostsFile="+kh, "StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "IdentityFile="+key.Private); code == 255 {
			t.Errorf("ssh refuses the host with what rtunnel wrote:\n%s", stderr)
		}
		// The next connect finds the key and writes nothing.
		if err := sessionUp(t, New(h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: kh, AcceptNew: true, HashKnownHosts: hash}, &logs{}))); err != nil {
			t.Fatalf("second connect: %v", err)
		}
		if again, _ := os.ReadFile(kh); string(again) != string(data) {
			t.Errorf("second connect changed known_hosts:\n%s", again)
		}
		return kh
	}
	t.Run("plain", func(t *testing.T) { learnOnce(t, false) })
	t.Run("hashed", func(t *testing.T) { learnOnce(t, true) })

	t.Run("yes never writes", func(t *testing.T) {
		kh := writeLines(t, filepath.Join(t.TempDir(), "known_hosts"), "# empty")
		err := sessionUp(t, New(h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: kh}, &logs{})))
		var he *HostKeyError
		// Unknown at run time is Slow (start-up refuses it for good: Check).
		if !errors.As(err, &he) || he.Kind != HostUnknown || !Slow(err) {
			t.Fatalf("rtunnel: %v, want an unknown-host error", err)
		}
		if data, _ := os.ReadFile(kh); string(data) != "# empty\n" {
			t.Errorf("known_hosts written with strict checking: %q", data)
		}
	})

	t.Run("a later change is refused and not written", func(t *testing.T) {
		impostor := sshdtest.Start(t, sshdtest.Options{Name: "impostor", AuthorizedKeys: []string{key.PublicLine}})
		// Both servers under one HostKeyAlias: the impostor claims the
		// name the hub's key was learned under.
		kh := filepath.Join(t.TempDir(), "known_hosts")
		writeFile(t, kh, "# learned by rtunnel\n", 0o600)
		hubEP := Endpoint{Identities: []string{key.Private}, KnownHosts: kh, AcceptNew: true, HostKeyAlias: "hub.example.org"}
		if err := sessionUp(t, New(h.config(hubEP, &logs{}))); err != nil {
			t.Fatalf("rtunnel: %v", err)
		}
		learned, _ := os.ReadFile(kh)
		if !strings.Contains(string(learned), "\nhub.example.org ssh-ed25519 "+hostKey) {
			t.Fatalf("known_hosts %q, want the hub's key under its HostKeyAlias", learned)
		}
		if fi, _ := os.Stat(kh); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %04o, want the file's 0600 kept", fi.Mode().Perm())
		}
		cfg := h.config(hubEP, &logs{})
		cfg.Server.Port = impostor.Port
		err := sessionUp(t, New(cfg))
		var he *HostKeyError
		if !errors.As(err, &he) || he.Kind != HostChanged || !Permanent(err) || !strings.Contains(err.Error(), "HAS CHANGED") {
			t.Fatalf("rtunnel: %v, want a permanent changed-key error", err)
		}
		if now, _ := os.ReadFile(kh); string(now) != string(learned) {
			t.Errorf("known_hosts changed after a refused key:\n%s", now)
		}
		// ssh does the same with the same file.
		ssh := func(port int) int {
			cmd := exec.Command("ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+kh, "-o", "GlobalKnownHostsFile=/dev/null",
				"-o", "StrictHostKeyChecking=accept-new", "-o", "HostKeyAlias=hub.example.org", "-o", "IdentitiesOnly=yes", "-i", key.Private,
				"-p", strconv.Itoa(port), "root@127.0.0.1", "true")
			err := cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			return 0
		}
		if code := ssh(h.srv.Port); code == 255 {
			t.Errorf("ssh refuses the hub under its alias with the learned key")
		}
		if code := ssh(impostor.Port); code != 255 {
			t.Errorf("ssh exit %d for the impostor, want 255", code)
		}
		if now, _ := os.ReadFile(kh); string(now) != string(learned) {
			t.Errorf("ssh changed known_hosts:\n%s", now)
		}
	})

	t.Run("tunnels sharing a file learn once", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = sessionUp(t, New(h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: kh, AcceptNew: true}, &logs{})))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("tunnel %d: %v", i, err)
			}
		}
		data, _ := os.ReadFile(kh)
		if n := strings.Count(string(data), "\n"); n != 1 {
			t.Errorf("known_hosts has %d lines, want 1:\n%s", n, data)
		}
	})
}

// Start-up's Check lets an unknown host through only with accept-new (a
// missing known_hosts too, as ssh creates it) or when a CA line covers
// it; otherwise it names the host to add.
func TestCheckUnknownHosts(t *testing.T) {
	dir := t.TempDir()
	key := sshdtest.NewKey(t, dir, "id", "ed25519")
	ca := strings.TrimSpace(authorized(otherKey(t)))
	empty := writeLines(t, filepath.Join(dir, "empty"), "# nothing")
	caOnly := writeLines(t, filepath.Join(dir, "ca_only"), "@cert-authority *.example.org "+ca)
	for _, c := range []struct {
		name string
		ep   Endpoint
		want string // "" for no error
	}{
		{"accept-new, file missing", Endpoint{KnownHosts: filepath.Join(dir, "absent"), AcceptNew: true}, ""},
		{"accept-new, host unknown", Endpoint{KnownHosts: empty, AcceptNew: true}, ""},
		{"a CA covers the host", Endpoint{KnownHosts: caOnly}, ""},
		{"host unknown", Endpoint{KnownHosts: empty}, "has no key for hub.example.org"},
		{"file missing", Endpoint{KnownHosts: filepath.Join(dir, "absent")}, "no such file or directory"},
	} {
		ep := c.ep
		ep.User, ep.Host, ep.Port, ep.Identities = "rt", "hub.example.org", 22, []string{key.Private}
		errs := Check(Config{Server: ep})
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", c.name, errs)
		case c.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want)):
			t.Errorf("%s: %v, want one error containing %q", c.name, errs, c.want)
		}
	}
}
