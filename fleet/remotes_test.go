package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtunnel/rtunnel/internal/authkeys"
	"golang.org/x/crypto/ssh"
)

// Port plan inside the hub's namespace: remote i (from 1) forwards
// forwardBase+i, serves its own metrics on metricsBase+i and, in the
// fleet view, forwards those to metricsForwardBase+i. All stay below the
// ephemeral range (32768), so no outgoing connection can hold one.
const (
	maxRemotes         = 5000
	forwardBase        = 10000
	metricsBase        = 20000
	metricsForwardBase = 26000
	oneProcessMetrics  = 19999
)

// remote is one simulated remote machine: its key, its forward, its config.
type remote struct {
	name           string
	port           int    // forwarded port on the hub
	metricsPort    int    // the remote's own /metrics (rtunnel only)
	metricsForward int    // hub port forwarded to metricsPort, 0 = none
	target         string // what the forward reaches on the remote's side
	key            string // private key file
	pub            string // public key line
	config         string // rtunnel's config file
}

// newRemotes writes n keys and the hub's authorized_keys: one line per
// key, as `rtunnel authorized-key --role b-remote` prints it.
func newRemotes(t *testing.T, h *hub, dir string, n int, metricsForward bool) []*remote {
	t.Helper()
	if n < 1 || n > maxRemotes {
		t.Fatalf("fleet: N=%d; use 1..%d", n, maxRemotes)
	}
	keyDir := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	rs := make([]*remote, n)
	var lines []string
	for i := range rs {
		r := &remote{name: fmt.Sprintf("remote-%04d", i+1), port: forwardBase + i + 1,
			metricsPort: metricsBase + i + 1, target: echoAddr}
		if metricsForward {
			r.metricsForward = metricsForwardBase + i + 1
		}
		r.key, r.pub = writeKey(t, keyDir, r.name)
		ports := []int{r.port}
		if r.metricsForward != 0 {
			ports = append(ports, r.metricsForward)
		}
		line, err := authkeys.Line(authkeys.Spec{Role: authkeys.BRemote, Ports: ports}, []byte(r.pub))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		rs[i] = r
	}
	h.writeAuthorizedKeys(t, lines)
	return rs
}

// writeKey writes an unencrypted ed25519 key in OpenSSH's format (what
// ssh-keygen writes, without running it a thousand times).
func writeKey(t *testing.T, dir, name string) (private, public string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	private = filepath.Join(dir, name)
	if err := os.WriteFile(private, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return private, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + name
}

// tunnelYAML is one tunnel of an rtunnel config, with rtunnel's defaults
// for everything a fleet operator would not set.
func tunnelYAML(h *hub, r *remote) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    server: %s@127.0.0.1:22\n    identity: %s\n    known_hosts: %s\n    forwards:\n",
		r.name, h.user, r.key, h.kh)
	fmt.Fprintf(&b, "      - remote: localhost:%d\n        local: %s\n", r.port, r.target)
	if r.metricsForward != 0 {
		fmt.Fprintf(&b, "      - remote: localhost:%d\n        local: 127.0.0.1:%d\n", r.metricsForward, r.metricsPort)
	}
	return b.String()
}

// writeConfig writes one rtunnel config holding the tunnels of rs, with
// its metrics endpoint on metricsPort.
func writeConfig(t *testing.T, h *hub, path string, metricsPort int, rs ...*remote) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "log: {level: info, format: json}\nshutdown_grace: 1s\nmetrics: {listen: 127.0.0.1:%d}\ntunnels:\n", metricsPort)
	for _, r := range rs {
		b.WriteString(tunnelYAML(h, r))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
