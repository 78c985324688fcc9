package tunnel

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// startAgent runs a real ssh-agent in the foreground on a socket of its
// own, loads keys into it with ssh-add (a key's KEY-cert.pub goes in with
// it), and stops it when the test ends. It returns the socket.
func startAgent(t *testing.T, keys ...string) string {
	t.Helper()
	sshdtest.RequireTools(t, "ssh-agent", "ssh-add")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent not listening on %s after 5s", sock)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, k := range keys {
		tool(t, []string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", "-q", k)
	}
	return sock
}

// identity_agent against a real ssh-agent and a real sshd, each case
// compared with ssh given the same agent.
func TestAgent(t *testing.T) {
	h := startRealHub(t, "")
	dir := t.TempDir()
	ca, caPub := newCA(t, dir, "user_ca")
	authorizedKey := sshdtest.NewKey(t, dir, "id_authorized", "ed25519")
	stranger := sshdtest.NewKey(t, dir, "id_stranger", "ed25519")
	stranger2 := sshdtest.NewKey(t, dir, "id_stranger2", "rsa")
	certified := sshdtest.NewKey(t, dir, "id_certified", "rsa")
	sign(t, ca, certified.Public, "root", "-V", "-5m:+1h")
	h.srv.SetAuthorizedKeys(t, []string{h.guideLine("", authorizedKey.PublicLine), h.guideLine("cert-authority", caPub)})

	withKey := startAgent(t, authorizedKey.Private)
	withCert := startAgent(t, certified.Private)
	strangers := startAgent(t, stranger.Private, stranger2.Private)

	up := func(t *testing.T, ep Endpoint, sshOpts ...string) {
		t.Helper()
		ep.KnownHosts = h.knownHosts(t)
		if err := sessionUp(t, New(h.config(ep, &logs{}))); err != nil {
			t.Fatalf("rtunnel: %v", err)
		}
		if code, stderr := h.sshExit(t, nil, append([]string{h.sshTrust(t)}, sshOpts...)...); code == 255 {
			t.Errorf("ssh refused where rtunnel logged in:\n%s", stderr)
		}
	}
	refused := func(t *testing.T, ep Endpoint, words []string, sshOpts ...string) error {
		t.Helper()
		ep.KnownHosts = h.knownHosts(t)
		err := sessionUp(t, New(h.config(ep, &logs{})))
		if Permanent(err) || Result(err) != ResultAuth {
			t.Errorf("rtunnel: %T %v: want a retried auth error", err, err)
		}
		for _, w := range words {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("message lacks %q:\n%v", w, err)
			}
		}
		if sshOpts != nil {
			if code, _ := h.sshExit(t, nil, append([]string{h.sshTrust(t)}, sshOpts...)...); code != 255 {
				t.Errorf("ssh exit %d, want 255 as rtunnel refused", code)
			}
		}
		return err
	}

	t.Run("agent key, no identity", func(t *testing.T) {
		up(t, Endpoint{IdentityAgent: withKey}, "IdentityAgent="+withKey)
	})
	t.Run("SSH_AUTH_SOCK", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", withKey)
		up(t, Endpoint{IdentityAgent: AgentFromEnv}, "IdentityAgent=SSH_AUTH_SOCK")
	})
	t.Run("agent certificate", func(t *testing.T) {
		up(t, Endpoint{IdentityAgent: withCert}, "IdentityAgent="+withCert)
	})
	t.Run("identity names an agent key by its .pub", func(t *testing.T) {
		both := startAgent(t, stranger.Private, authorizedKey.Private)
		up(t, Endpoint{Identities: []string{authorizedKey.Public}, IdentityAgent: both},
			"IdentityAgent="+both, "IdentitiesOnly=yes", "IdentityFile="+authorizedKey.Public)
		err := refused(t, Endpoint{Identities: []string{stranger.Public}, IdentityAgent: both},
			[]string{"key " + stranger.Fingerprint + " (agent, " + stranger.Public + ")"},
			"IdentityAgent="+both, "IdentitiesOnly=yes", "IdentityFile="+stranger.Public)
		if err != nil && strings.Contains(err.Error(), authorizedKey.Fingerprint) {
			t.Errorf("the agent's other key was offered (IdentitiesOnly):\n%v", err)
		}
	})
	t.Run("identity and agent: not the agent's certificate, as ssh", func(t *testing.T) {
		// The key alone, no certificate beside it: the agent has one.
		alone := filepath.Join(t.TempDir(), "id")
		data, err := os.ReadFile(certified.Private)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, alone, string(data), 0o600)
		refused(t, Endpoint{Identities: []string{alone}, IdentityAgent: withCert}, []string{"key " + certified.Fingerprint + " (" + alone + ")"},
			"IdentityAgent="+withCert, "IdentitiesOnly=yes", "IdentityFile="+alone)
	})
	t.Run("identity and agent: only that key", func(t *testing.T) {
		err := refused(t, Endpoint{Identities: []string{stranger.Private}, IdentityAgent: withKey},
			[]string{"key " + stranger.Fingerprint + " (" + stranger.Private + ")"},
			"IdentityAgent="+withKey, "IdentitiesOnly=yes", "IdentityFile="+stranger.Private)
		if err != nil && strings.Contains(err.Error(), authorizedKey.Fingerprint) {
			t.Errorf("the agent's other key was offered (IdentitiesOnly):\n%v", err)
		}
	})
	t.Run("agent keys refused", func(t *testing.T) {
		refused(t, Endpoint{IdentityAgent: strangers},
			[]string{"key " + stranger.Fingerprint + " (agent)", "key " + stranger2.Fingerprint + " (agent)"}, "IdentityAgent="+strangers)
	})
	t.Run("no socket", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "gone.sock")
		err := refused(t, Endpoint{IdentityAgent: missing}, []string{"ssh-agent at " + missing, "no such file or directory", "is the agent running"})
		var ae *AgentError
		if !errors.As(err, &ae) {
			t.Errorf("%T, want *AgentError", err)
		}
	})
	t.Run("dead socket", func(t *testing.T) {
		dead := filepath.Join(t.TempDir(), "dead.sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: dead, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
		refused(t, Endpoint{IdentityAgent: dead}, []string{"ssh-agent at " + dead, "connection refused"})
	})
	t.Run("SSH_AUTH_SOCK unset", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", "")
		os.Unsetenv("SSH_AUTH_SOCK")
		refused(t, Endpoint{IdentityAgent: AgentFromEnv}, []string{"SSH_AUTH_SOCK is not set in rtunnel's environment"})
	})
}

// identity as a list: tried in order within one connection, as ssh tries
// each IdentityFile, until the hub's MaxAuthTries ends the attempt.
func TestSeveralIdentities(t *testing.T) {
	dir := t.TempDir()
	good := sshdtest.NewKey(t, dir, "id_good", "ed25519")
	bad1 := sshdtest.NewKey(t, dir, "id_bad1", "ed25519")
	bad2 := sshdtest.NewKey(t, dir, "id_bad2", "rsa")
	ids := []string{bad1.Private, bad2.Private, good.Private}
	sshIDs := []string{"IdentitiesOnly=yes", "IdentityFile=" + bad1.Private, "IdentityFile=" + bad2.Private, "IdentityFile=" + good.Private}

	t.Run("third of three", func(t *testing.T) {
		h := startRealHub(t, "MaxAuthTries 3\n")
		h.srv.SetAuthorizedKeys(t, []string{h.guideLine("", good.PublicLine)})
		if err := sessionUp(t, New(h.config(Endpoint{Identities: ids, KnownHosts: h.knownHosts(t)}, &logs{}))); err != nil {
			t.Fatalf("rtunnel: %v", err)
		}
		if code, stderr := h.sshExit(t, nil, append([]string{h.sshTrust(t)}, sshIDs...)...); code == 255 {
			t.Errorf("ssh refused where rtunnel logged in:\n%s", stderr)
		}
	})
	t.Run("stopped by MaxAuthTries", func(t *testing.T) {
		h := startRealHub(t, "MaxAuthTries 2\n")
		h.srv.SetAuthorizedKeys(t, []string{h.guideLine("", good.PublicLine)})
		err := sessionUp(t, New(h.config(Endpoint{Identities: ids, KnownHosts: h.knownHosts(t)}, &logs{})))
		var ae *AuthError
		if !errors.As(err, &ae) || !ae.MaxTries || Permanent(err) {
			t.Fatalf("rtunnel: %T %v, want a retried AuthError stopped by MaxAuthTries", err, err)
		}
		for _, w := range []string{bad1.Fingerprint, bad2.Fingerprint, "MaxAuthTries: put the identity it accepts first"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("message lacks %q:\n%v", w, err)
			}
		}
		code, stderr := h.sshExit(t, nil, append([]string{h.sshTrust(t)}, sshIDs...)...)
		if code != 255 || !strings.Contains(stderr, "Too many authentication failures") {
			t.Errorf("ssh exit %d (%s), want 255 with Too many authentication failures, as rtunnel", code, stderr)
		}
		if !strings.Contains(h.srv.Log(), "Too many authentication failures") {
			t.Errorf("sshd did not stop the attempt at MaxAuthTries")
		}
	})
}
