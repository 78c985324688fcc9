package tunnel

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host certificates against a real sshd with HostCertificate, each
// known_hosts also given to the real ssh client: rtunnel accepts what ssh
// accepts and refuses what ssh refuses, saying why (never "HAS CHANGED").
func TestHostCertificates(t *testing.T) {
	certDir := t.TempDir()
	hostCert := filepath.Join(certDir, "host-cert.pub")
	h := startRealHub(t, "HostCertificate "+hostCert)
	key := sshdtest.NewKey(t, h.dir, "id", "ed25519")
	h.srv.SetAuthorizedKeys(t, []string{h.guideLine("", key.PublicLine)})
	ca, caPub := newCA(t, h.dir, "host_ca")
	_, otherPub := newCA(t, h.dir, "other_ca")
	hostLine, err := os.ReadFile(hostPub(h, "ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	hostKey := strings.Join(strings.Fields(string(hostLine))[:2], " ")
	name := "[127.0.0.1]:" + strconv.Itoa(h.srv.Port)

	// install signs the hub's host key and restarts sshd with it; an
	// empty principals removes the certificate.
	install := func(principals string, validity string) {
		t.Helper()
		os.Remove(hostCert)
		if principals != "" {
			c := sign(t, ca, hostPub(h, "ed25519"), principals, "-h", "-V", validity)
			if err := os.Rename(c, hostCert); err != nil {
				t.Fatal(err)
			}
		}
		h.srv.Restart(t)
	}

	cases := []struct {
		name      string
		principal string // the certificate's; "" for none
		validity  string
		lines     []string
		kind      HostKeyKind // -1: accepted
		permanent bool
		words     []string
	}{
		{"CA for [host]:port", "127.0.0.1", "-5m:+1h", []string{"@cert-authority " + name + " " + caPub}, -1, false, nil},
		{"CA for *", "127.0.0.1", "-5m:+1h", []string{"@cert-authority * " + caPub}, -1, false, nil},
		{"CA under a hashed name", "127.0.0.1", "-5m:+1h", []string{"@cert-authority " + knownhosts.HashHostname(name) + " " + caPub}, -1, false, nil},
		// ssh looks a CA up without the port too ("checking without port identifier").
		{"CA for the bare host name", "127.0.0.1", "-5m:+1h", []string{"@cert-authority 127.0.0.1 " + caPub}, -1, false, nil},
		{"CA negated for the host", "127.0.0.1", "-5m:+1h", []string{"@cert-authority *,!" + name + ",!127.0.0.1 " + caPub}, HostCertUntrusted, true,
			[]string{"is signed by CA", "does not list as @cert-authority for " + name}},
		{"another CA's certificate", "127.0.0.1", "-5m:+1h", []string{"@cert-authority * " + otherPub}, HostCertUntrusted, true,
			[]string{"is signed by CA", "does not list as @cert-authority"}},
		{"CA revoked", "127.0.0.1", "-5m:+1h", []string{"@cert-authority * " + caPub, "@revoked * " + caPub}, HostRevoked, true, []string{"@revoked"}},
		{"host key revoked", "127.0.0.1", "-5m:+1h", []string{"@cert-authority * " + caPub, "@revoked * " + hostKey}, HostRevoked, true, []string{"@revoked"}},
		{"expired", "127.0.0.1", "20200101:20200102", []string{"@cert-authority * " + caPub}, HostCertExpired, false,
			[]string{"has expired", "valid from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z", "rtunnel retries"}},
		{"for another host", "hub.example.org", "-5m:+1h", []string{"@cert-authority * " + caPub}, HostCertPrincipal, true,
			[]string{"is for hub.example.org, not 127.0.0.1"}},
		{"no certificate, CA only", "", "", []string{"@cert-authority * " + caPub}, HostCertOnly, true,
			[]string{"trusts only a certificate authority for " + name, "offered a plain ssh-ed25519 key"}},
	}
	installed := ""
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if now := c.principal + c.validity; now != installed {
				install(c.principal, c.validity)
				installed = now
			}
			kh := writeLines(t, filepath.Join(t.TempDir(), "known_hosts"), c.lines...)
			l := &logs{}
			err := sessionUp(t, New(h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: kh}, l)))
			code, stderr := h.sshExit(t, nil, "UserKnownHostsFile="+kh, "StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "IdentityFile="+key.Private)
			if c.kind < 0 {
				if err != nil {
					t.Fatalf("rtunnel: %v", err)
				}
				if code == 255 {
					t.Errorf("rtunnel connected, but ssh refused (exit 255):\n%s", stderr)
				}
				return
			}
			if code != 255 {
				t.Errorf("ssh connected (exit %d), rtunnel must refuse as ssh does:\n%s", code, stderr)
			}
			var he *HostKeyError
			if !errors.As(err, &he) {
				t.Fatalf("rtunnel: %T %v, want a *HostKeyError", err, err)
			}
			if he.Kind != c.kind || Permanent(err) != c.permanent || Result(err) != ResultHostKey {
				t.Errorf("kind %d permanent %v result %s, want kind %d permanent %v result hostkey: %v", he.Kind, Permanent(err), Result(err), c.kind, c.permanent, err)
			}
			for _, w := range c.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "HAS CHANGED") {
				t.Errorf("a certificate problem reported as a changed key:\n%v", err)
			}
		})
	}
}

// The algorithms offered put the certificate ones first when a CA line
// covers the host (or the server never shows its certificate), and stay
// known_hosts' plain types when none does (golang/go#29286).
func TestHostKeyAlgorithmsWithCA(t *testing.T) {
	dir := t.TempDir()
	ca, other := otherKey(t), otherKey(t)
	caLine := "@cert-authority *.example.org " + strings.TrimSpace(authorized(ca))
	for _, c := range []struct {
		name, host string
		lines      []string
		first      string
		hasPlain   string
	}{
		{"CA only", "hub.example.org", []string{caLine}, "ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519"},
		{"CA and a plain RSA key", "hub.example.org", []string{caLine, "hub.example.org " + strings.TrimSpace(authorized(rsaKey(t)))}, "ssh-ed25519-cert-v01@openssh.com", "rsa-sha2-512"},
		{"CA for other hosts", "hub.example.net", []string{caLine, "hub.example.net " + strings.TrimSpace(authorized(other))}, "ssh-ed25519", ""},
	} {
		kh := writeLines(t, filepath.Join(dir, c.name), c.lines...)
		hk, err := newHostKeys(&Endpoint{Host: c.host, Port: 22, KnownHosts: kh}, nil)
		if err != nil {
			t.Fatal(err)
		}
		algos := hk.Algorithms()
		if len(algos) == 0 || algos[0] != c.first {
			t.Errorf("%s: algorithms %v, want %s first", c.name, algos, c.first)
		}
		if c.hasPlain != "" && !strings.Contains(strings.Join(algos, ","), ","+c.hasPlain) {
			t.Errorf("%s: algorithms %v lack the plain %s", c.name, algos, c.hasPlain)
		}
		if c.hasPlain == "" && strings.Contains(strings.Join(algos, ","), "cert-v01") {
			t.Errorf("%s: algorithms %v offer certificates with no CA for the host", c.name, algos)
		}
	}
}

// OpenSSH's known_hosts host matching, which @cert-authority lines use.
func TestHostMatches(t *testing.T) {
	hashed := knownhosts.HashHostname("[hub]:2222")
	for _, c := range []struct {
		patterns string
		name     string
		want     bool
	}{
		{"*", "[hub]:2222", true},
		{"hub", "[hub]:2222", false},
		{"[hub]:2222", "[hub]:2222", true},
		{"[HUB]:2222", "[hub]:2222", true},
		{"*.example.org", "a.example.org", true},
		{"*.example.org", "example.org", false},
		{"h?b", "hub", true},
		{"*,!hub", "hub", false},
		{"!hub,*", "hub", false},
		{"!hub", "hub", false},
		{"!other", "hub", false},
		{hashed, "[hub]:2222", true},
		{hashed, "hub", false},
	} {
		if got := hostMatches(strings.Split(c.patterns, ","), c.name); got != c.want {
			t.Errorf("hostMatches(%q, %q) = %v, want %v", c.patterns, c.name, got, c.want)
		}
	}
}

func rsaKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
