package tunnel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// requireRoot: changing a file's owner needs root. Skipped otherwise,
// failed under RTUNNEL_REQUIRE_SSHD=1 (CI runs as root).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("RTUNNEL_REQUIRE_SSHD") == "1" {
		t.Fatalf("needs root to chown test files (euid %d)", os.Geteuid())
	}
	t.Skipf("needs root to chown test files (euid %d); set RTUNNEL_REQUIRE_SSHD=1 to fail instead", os.Geteuid())
}

// nobody is a uid that is neither root nor the test's user.
const nobody = 65534

// The rule OpenSSH applies to the files it trusts: owned by root or the
// running user, not writable by group or others; private keys not
// accessible by group or others at all. Each refusal names the file and
// the command that fixes it, and is permanent (a configuration error).
func TestUnsafeFilesRefused(t *testing.T) {
	requireRoot(t)
	f := newClientFiles(t, newTestServer(t))
	keyData, _ := os.ReadFile(f.identity)
	khData := "127.0.0.1 " + string(ssh.MarshalAuthorizedKey(f.signer.PublicKey()))
	dir := t.TempDir()
	type fileCase struct {
		name  string
		mode  os.FileMode
		uid   int // -1: the test's own
		gid   int // -1: unchanged
		words []string
	}
	key := func(c fileCase) error {
		p := filepath.Join(dir, "key-"+strings.ReplaceAll(c.name, " ", "-"))
		place(t, p, string(keyData), c.mode, c.uid, c.gid)
		_, err := LoadIdentity(p)
		return err
	}
	kh := func(c fileCase) error {
		p := filepath.Join(dir, "kh-"+strings.ReplaceAll(c.name, " ", "-"))
		place(t, p, khData, c.mode, c.uid, c.gid)
		_, err := LoadKnownHosts(p)
		return err
	}
	refused := []struct {
		load func(fileCase) error
		c    fileCase
	}{
		{key, fileCase{"key group readable", 0o640, -1, -1, []string{"0640", "too open", "chmod 600"}}},
		{key, fileCase{"key of another user", 0o600, nobody, -1, []string{"owned by", "uid 65534", "not by root, the user rtunnel runs as", "chown root"}}},
		{kh, fileCase{"known_hosts group writable", 0o664, -1, -1, []string{"0664", "group or others write it", "chmod go-w"}}},
		{kh, fileCase{"known_hosts world writable", 0o646, -1, -1, []string{"0646", "chmod go-w"}}},
		{kh, fileCase{"known_hosts of another user", 0o644, nobody, -1, []string{"owned by", "uid 65534", "chown root"}}},
	}
	for _, r := range refused {
		t.Run(r.c.name, func(t *testing.T) {
			err := r.load(r.c)
			if err == nil {
				t.Fatal("accepted")
			}
			if !Permanent(err) || Slow(err) {
				t.Errorf("Permanent = %v, Slow = %v; want a permanent refusal: %v", Permanent(err), Slow(err), err)
			}
			for _, w := range append(r.c.words, dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%v", w, err)
				}
			}
		})
	}
	// What rtunnel's package installs (0640 root:rtunnel) and what a
	// user makes with ssh-keyscan or ssh-keygen stays accepted.
	accepted := []struct {
		load func(fileCase) error
		c    fileCase
	}{
		{kh, fileCase{"known_hosts 0640 root, other group", 0o640, 0, nobody, nil}},
		{kh, fileCase{"known_hosts 0644", 0o644, -1, -1, nil}},
		{key, fileCase{"key 0600", 0o600, -1, -1, nil}},
		{key, fileCase{"key 0400 root", 0o400, 0, -1, nil}},
	}
	for _, a := range accepted {
		t.Run(a.c.name, func(t *testing.T) {
			if err := a.load(a.c); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// A public key given as identity is named as such before anything is said
// about its mode: a .pub file is 0644, and "too open" would send the
// operator to chmod the wrong file.
func TestPublicKeyAsIdentityNamedFirst(t *testing.T) {
	f := newClientFiles(t, nil)
	pub := f.identity + ".pub"
	writeFile(t, pub, string(ssh.MarshalAuthorizedKey(f.signer.PublicKey())), 0o644)
	_, err := LoadIdentity(pub)
	var kf *KeyFileError
	if !errors.As(err, &kf) {
		t.Fatalf("err %T %v, want a KeyFileError", err, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "this is a public key") || !strings.Contains(msg, "(usually the same name without .pub: "+f.identity+")") {
		t.Errorf("message does not say it is a public key and where the private one is:\n%s", msg)
	}
	if strings.Contains(msg, "too open") || strings.Contains(msg, "chmod") {
		t.Errorf("message talks about the mode of a public key:\n%s", msg)
	}
	if !Permanent(err) {
		t.Errorf("Permanent = false for a public key as identity")
	}
}

// place writes a file with exactly mode and, where given, owner and group.
func place(t *testing.T, path, data string, mode os.FileMode, uid, gid int) {
	t.Helper()
	writeFile(t, path, data, mode)
	if err := os.Lchown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}
