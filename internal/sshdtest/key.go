package sshdtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// toolTimeout bounds every ssh-keygen run.
const toolTimeout = 30 * time.Second

// Key is a key pair written by ssh-keygen.
type Key struct {
	Private     string // path of the private key, mode 0600
	Public      string // path of the .pub file
	PublicLine  string // "ssh-ed25519 AAAA... comment", trimmed
	Fingerprint string // "SHA256:..." as ssh-keygen -l prints it
}

// NewKey generates an unencrypted key of type typ ("ed25519", "ecdsa" or
// "rsa") commented name, as dir/name and dir/name.pub. An empty dir means a
// fresh t.TempDir().
func NewKey(t testing.TB, dir, name, typ string) Key {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	priv := filepath.Join(dir, name)
	if _, err := os.Stat(priv); err == nil {
		// ssh-keygen would ask whether to overwrite, and fail without a tty.
		t.Fatalf("sshdtest: NewKey: %s already exists", priv)
	}
	generateKey(t, priv, name, typ)
	k := Key{Private: priv, Public: priv + ".pub"}
	pub, err := os.ReadFile(k.Public)
	if err != nil {
		t.Fatalf("sshdtest: NewKey: %v", err)
	}
	k.PublicLine = strings.TrimSpace(string(pub))
	out := runTool(t, "ssh-keygen", "-l", "-E", "sha256", "-f", k.Public)
	// "256 SHA256:abc... comment (ED25519)"
	fields := strings.Fields(out)
	if len(fields) < 2 || !strings.HasPrefix(fields[1], "SHA256:") {
		t.Fatalf("sshdtest: NewKey: unexpected ssh-keygen -l output %q", out)
	}
	k.Fingerprint = fields[1]
	return k
}

// generateKey runs ssh-keygen for an unencrypted key at path. RSA keys are
// 2048 bits: strong enough for a test, and quick to generate.
func generateKey(t testing.TB, path, comment, typ string) {
	t.Helper()
	args := []string{"-q", "-t", typ, "-N", "", "-C", comment, "-f", path}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	runTool(t, "ssh-keygen", args...)
}

// runTool runs a binary under toolTimeout and returns its stdout, failing the
// test with its stderr when it does not succeed.
func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	path, err := lookTool(name)
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sshdtest: %s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
