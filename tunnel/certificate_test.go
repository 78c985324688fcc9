package tunnel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// User certificates against a hub whose only line is the guide's, in its
// cert-authority form: KEY-cert.pub beside the key is used (as ssh -i KEY
// uses it), for RSA keys with rsa-sha2 signatures (sshd >= 8.8 refuses
// ssh-rsa), and certificate: names one elsewhere. The real ssh gets the
// same files.
func TestUserCertificates(t *testing.T) {
	h := startRealHub(t, "")
	ca, caPub := newCA(t, h.dir, "user_ca")
	h.srv.SetAuthorizedKeys(t, []string{h.guideLine("cert-authority", caPub)})

	for _, typ := range []string{"ed25519", "rsa"} {
		t.Run("beside the "+typ+" key", func(t *testing.T) {
			key := sshdtest.NewKey(t, t.TempDir(), "id", typ)
			sign(t, ca, key.Public, "root", "-V", "-5m:+1h")
			if err := sessionUp(t, New(h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: h.knownHosts(t)}, &logs{}))); err != nil {
				t.Fatalf("rtunnel: %v", err)
			}
			if code, stderr := h.sshExit(t, nil, h.sshTrust(t), "IdentitiesOnly=yes", "IdentityFile="+key.Private); code == 255 {
				t.Errorf("ssh refused where rtunnel logged in:\n%s", stderr)
			}
			if !strings.Contains(h.srv.Log(), "Accepted publickey for root") || !strings.Contains(h.srv.Log(), strings.ToUpper(typ)+"-CERT") {
				t.Errorf("sshd did not log a certificate login for the %s key", typ)
			}
		})
	}

	t.Run("certificate: names it", func(t *testing.T) {
		key := sshdtest.NewKey(t, t.TempDir(), "id", "ed25519")
		elsewhere := filepath.Join(t.TempDir(), "issued.pub")
		if err := os.Rename(sign(t, ca, key.Public, "root", "-V", "-5m:+1h"), elsewhere); err != nil {
			t.Fatal(err)
		}
		if err := sessionUp(t, New(h.config(Endpoint{Identities: []string{key.Private}, Certificate: elsewhere, KnownHosts: h.knownHosts(t)}, &logs{}))); err != nil {
			t.Fatalf("rtunnel: %v", err)
		}
		if code, stderr := h.sshExit(t, nil, h.sshTrust(t), "IdentitiesOnly=yes", "IdentityFile="+key.Private, "CertificateFile="+elsewhere); code == 255 {
			t.Errorf("ssh refused where rtunnel logged in:\n%s", stderr)
		}
	})

	t.Run("no certificate", func(t *testing.T) {
		key := sshdtest.NewKey(t, t.TempDir(), "id", "ed25519")
		err := sessionUp(t, New(h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: h.knownHosts(t)}, &logs{})))
		var ae *AuthError
		if !errors.As(err, &ae) || Permanent(err) || !strings.Contains(err.Error(), "key "+key.Fingerprint+" ("+key.Private+")") {
			t.Fatalf("rtunnel: %v, want a retried AuthError naming the key", err)
		}
		if code, _ := h.sshExit(t, nil, h.sshTrust(t), "IdentitiesOnly=yes", "IdentityFile="+key.Private); code != 255 {
			t.Errorf("ssh exit %d, want 255 as rtunnel refused", code)
		}
	})

	// A short-lived certificate: expired, or not valid yet, it is not
	// offered and the refusal says its window; renewed in place, the next
	// connect of the same tunnel uses it.
	for _, c := range []struct{ name, validity, words string }{
		{"expired, then renewed", "20200101:20200102", "has expired (valid from 2020-01-01T00:00:00Z to 2020-01-02T00:00:00Z"},
		{"not valid yet, then renewed", "+1d:+2d", "is not valid yet (valid from "},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := sshdtest.NewKey(t, t.TempDir(), "id", "ed25519")
			cert := sign(t, ca, key.Public, "root", "-V", c.validity)
			l := &logs{}
			tn := New(h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: h.knownHosts(t)}, l))
			err := sessionUp(t, tn)
			var ae *AuthError
			if !errors.As(err, &ae) || Permanent(err) || Result(err) != ResultAuth {
				t.Fatalf("rtunnel: %T %v, want a retried AuthError", err, err)
			}
			for _, w := range []string{"certificate " + cert + " " + c.words, "so it was not offered"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
			if code, _ := h.sshExit(t, nil, h.sshTrust(t), "IdentitiesOnly=yes", "IdentityFile="+key.Private); code != 255 {
				t.Errorf("ssh exit %d with the same certificate, want 255", code)
			}
			os.Remove(cert)
			sign(t, ca, key.Public, "root", "-V", "-5m:+1h")
			if err := sessionUp(t, tn); err != nil {
				t.Fatalf("after renewal: %v", err)
			}
		})
	}
}

// The other hub-side form: TrustedUserCAKeys with an
// AuthorizedPrincipalsFile whose principal line carries the guide's options.
func TestUserCertificateTrustedUserCAKeys(t *testing.T) {
	sshdtest.Require(t)
	dir := t.TempDir()
	ca, _ := newCA(t, dir, "user_ca")
	principals := filepath.Join(dir, "principals")
	h := startRealHub(t, "TrustedUserCAKeys "+ca+".pub\nAuthorizedPrincipalsFile "+principals+"\n")
	writeLines(t, principals, h.guideLine("", "rtunnel-fleet"))
	key := sshdtest.NewKey(t, t.TempDir(), "id", "ed25519")
	sign(t, ca, key.Public, "rtunnel-fleet", "-V", "-5m:+1h")
	if err := sessionUp(t, New(h.config(Endpoint{Identities: []string{key.Private}, KnownHosts: h.knownHosts(t)}, &logs{}))); err != nil {
		t.Fatalf("rtunnel: %v", err)
	}
	if code, stderr := h.sshExit(t, nil, h.sshTrust(t), "IdentitiesOnly=yes", "IdentityFile="+key.Private); code == 255 {
		t.Errorf("ssh refused where rtunnel logged in:\n%s", stderr)
	}

	// A certificate for another principal is refused by both.
	other := sshdtest.NewKey(t, t.TempDir(), "id", "ed25519")
	sign(t, ca, other.Public, "someone-else", "-V", "-5m:+1h")
	var ae *AuthError
	if err := sessionUp(t, New(h.config(Endpoint{Identities: []string{other.Private}, KnownHosts: h.knownHosts(t)}, &logs{}))); !errors.As(err, &ae) {
		t.Fatalf("rtunnel: %v, want an AuthError", err)
	}
	if code, _ := h.sshExit(t, nil, h.sshTrust(t), "IdentitiesOnly=yes", "IdentityFile="+other.Private); code != 255 {
		t.Errorf("ssh exit %d, want 255", code)
	}
}

// Certificate files rtunnel cannot use: an explicit one is an error (for
// good when it is wrong, retried when it may be mid-renewal); one beside
// the key is a note and the key is still offered, as ssh does.
func TestCertificateFiles(t *testing.T) {
	sshdtest.RequireTools(t, "ssh-keygen")
	dir := t.TempDir()
	ca, _ := newCA(t, dir, "ca")
	key := sshdtest.NewKey(t, dir, "id", "ed25519")
	other := sshdtest.NewKey(t, dir, "other", "ed25519")
	otherCert := sign(t, ca, other.Public, "root", "-V", "-5m:+1h")
	good, err := os.ReadFile(otherCert)
	if err != nil {
		t.Fatal(err)
	}
	cut := writeLines(t, filepath.Join(dir, "cut-cert.pub"), string(good[:len(good)/2]))
	// A FIFO must be refused unread (a read would block for good), and a
	// certificate others may rewrite is refused as known_hosts is.
	fifo := filepath.Join(dir, "fifo-cert.pub")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	writable := filepath.Join(dir, "writable-cert.pub")
	writeFile(t, writable, string(good), 0o600)
	if err := os.Chmod(writable, 0o666); err != nil { // past the umask
		t.Fatal(err)
	}

	for _, c := range []struct {
		name      string
		cert      string
		permanent bool
		slow      bool
		want      string
	}{
		{"for another key", otherCert, true, false, "certifies key " + other.Fingerprint + ", which is neither an identity nor a key of the agent"},
		{"a plain public key", other.Public, true, false, "holds a plain ssh-ed25519 public key, not a certificate"},
		{"cut short", cut, false, true, "is not an OpenSSH certificate"},
		{"missing", filepath.Join(dir, "absent-cert.pub"), false, true, "certificate cannot be read: no such file or directory"},
		{"a FIFO", fifo, true, false, "certificate is not a regular file"},
		{"writable by others", writable, true, false, "chmod go-w"},
	} {
		_, err := loadCredentials(context.Background(), &Endpoint{Identities: []string{key.Private}, Certificate: c.cert})
		if err == nil || Permanent(err) != c.permanent || Slow(err) != c.slow || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (permanent %v, slow %v), want permanent %v, slow %v, containing %q", c.name, err, Permanent(err), Slow(err), c.permanent, c.slow, c.want)
		}
	}

	// Beside the key: noted, not fatal.
	writeFile(t, key.Private+"-cert.pub", string(good), 0o644)
	creds, err := loadCredentials(context.Background(), &Endpoint{Identities: []string{key.Private}})
	if err != nil {
		t.Fatal(err)
	}
	if len(creds.signers) != 1 || len(creds.notes) != 1 || !strings.Contains(creds.notes[0], "certifies key "+other.Fingerprint+", not "+key.Private+"'s") {
		t.Errorf("signers %d, notes %q: want the key offered and the certificate noted", len(creds.signers), creds.notes)
	}
}
