package tunnel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/reconnect"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Classification is tested with the errors rtunnel really gets: each case
// fails for real (a closed port, a refused key, a changed host key in a real
// knownhosts callback, a silent server...) and the test checks what
// Permanent (exit 78), Slow, Result (log and metrics label) and FastRetry decide,
// and what the message tells the operator.

type classified struct {
	permanent bool
	slow      bool // retried after the longest backoff wait (a file being rewritten)
	result    string
	fast      bool
	busy      bool     // retried on the busy hub's short, spread-out waits
	words     []string // the message must contain each
}

func check(t *testing.T, got error, want classified) {
	t.Helper()
	if got == nil {
		t.Fatal("no error")
	}
	if p := Permanent(got); p != want.permanent {
		t.Errorf("Permanent = %v, want %v for %T: %v", p, want.permanent, got, got)
	}
	if sl := Slow(got); sl != want.slow {
		t.Errorf("Slow = %v, want %v for %T: %v", sl, want.slow, got, got)
	}
	if r := Result(got); r != want.result {
		t.Errorf("Result = %q, want %q for %T: %v", r, want.result, got, got)
	}
	if f := FastRetry(got); f != want.fast {
		t.Errorf("FastRetry = %v, want %v for %T", f, want.fast, got)
	}
	if b := Busy(got); b != want.busy {
		t.Errorf("Busy = %v, want %v for %T: %v", b, want.busy, got, got)
	}
	for _, w := range want.words {
		if !strings.Contains(got.Error(), w) {
			t.Errorf("message lacks %q:\n%v", w, got)
		}
	}
}

// runOnce runs one Session to completion and returns its error.
func runOnce(t *testing.T, cfg Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return New(cfg).Session(ctx, nil)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeFile writes data with exactly mode, whatever the umask.
func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func otherKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestClassifyDialRefused(t *testing.T) {
	f := newClientFiles(t, nil)
	l := &logs{}
	cfg := baseConfig(nil, f, l, "127.0.0.1:22")
	cfg.Server.Port = freePort(t)
	writeFile(t, f.knownHosts, "[127.0.0.1]:"+strconv.Itoa(cfg.Server.Port)+" "+string(ssh.MarshalAuthorizedKey(otherKey(t))), 0o644)
	err := runOnce(t, cfg)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("err %v does not wrap ECONNREFUSED", err)
	}
	if !Refused(err) {
		t.Errorf("Refused(%v) = false for a refused connect to the first hop", err)
	}
	check(t, err, classified{result: ResultDial, words: []string{"cannot connect to rt@127.0.0.1:", "connection refused"}})
}

func TestClassifyNameDoesNotResolve(t *testing.T) {
	f := newClientFiles(t, nil)
	cfg := baseConfig(nil, f, &logs{}, "127.0.0.1:22")
	// .onion names are never sent to DNS (RFC 7686): a name that does not
	// resolve, without traffic. (e2e/faults covers "no such host" from a
	// resolver, in a namespace.)
	cfg.Server.Host, cfg.Server.Port = "hub.onion", 22
	writeFile(t, f.knownHosts, "hub.onion "+string(ssh.MarshalAuthorizedKey(otherKey(t))), 0o644)
	err := runOnce(t, cfg)
	var dnsErr *net.DNSError
	var addrErr *net.AddrError
	if !errors.As(err, &dnsErr) && !errors.As(err, &addrErr) {
		t.Errorf("err %T %v: want a *net.DNSError or *net.AddrError", err, err)
	}
	check(t, err, classified{result: ResultDial, words: []string{"cannot connect to rt@hub.onion:22", "hub.onion"}})
}

func TestClassifyHostKeys(t *testing.T) {
	s := newTestServer(t)
	hostLine := func(k ssh.PublicKey) string {
		return knownhosts.Line([]string{knownhosts.Normalize(s.addr())}, k) + "\n"
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, _ := ssh.NewPublicKey(&rsaKey.PublicKey)
	cases := []struct {
		name       string
		knownHosts string
		kind       HostKeyKind
		want       classified
	}{
		{"changed", hostLine(otherKey(t)), HostChanged,
			classified{permanent: true, result: ResultHostKey, words: []string{"HAS CHANGED", "ssh-keygen -R [127.0.0.1]:" + strconv.Itoa(s.port), "will not connect"}}},
		{"unknown", knownhosts.Line([]string{"[127.0.0.2]:" + strconv.Itoa(s.port)}, s.hostKey.PublicKey()) + "\n", HostUnknown,
			classified{slow: true, result: ResultHostKey, words: []string{"is not in", "never trusts an unknown host", "ssh-keyscan -p " + strconv.Itoa(s.port) + " -t ed25519 127.0.0.1"}}},
		{"revoked", "@revoked * " + string(ssh.MarshalAuthorizedKey(s.hostKey.PublicKey())) + hostLine(s.hostKey.PublicKey()), HostRevoked,
			classified{permanent: true, result: ResultHostKey, words: []string{"@revoked", "will not connect"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newClientFiles(t, s)
			writeFile(t, f.knownHosts, c.knownHosts, 0o644)
			err := runOnce(t, baseConfig(s, f, &logs{}, "127.0.0.1:22"))
			var hk *HostKeyError
			if !errors.As(err, &hk) || hk.Kind != c.kind {
				t.Fatalf("err %T %v, want a HostKeyError of kind %v", err, err, c.kind)
			}
			check(t, err, c.want)
		})
	}
	// known_hosts holds only an RSA key, the server only ed25519: x/crypto
	// finds no common host key algorithm. Retried: the server may get its
	// RSA key back; the message names what to compare.
	t.Run("no common algorithm", func(t *testing.T) {
		f := newClientFiles(t, s)
		writeFile(t, f.knownHosts, hostLine(rsaPub), 0o644)
		err := runOnce(t, baseConfig(s, f, &logs{}, "127.0.0.1:22"))
		check(t, err, classified{result: ResultHandshake, words: []string{"SSH handshake with rt@127.0.0.1:", "no common algorithm for host key"}})
	})
}

func TestClassifyKnownHostsAndKeyFiles(t *testing.T) {
	s := newTestServer(t)
	f := newClientFiles(t, s)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "c", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := []struct {
		name  string
		setup func(cfg *Config)
		want  classified
	}{
		{"known_hosts missing", func(c *Config) { c.Server.KnownHosts = filepath.Join(dir, "nope") },
			classified{slow: true, result: ResultHandshake, words: []string{"known_hosts", "no such file or directory", "ssh-keyscan"}}},
		{"known_hosts garbage", func(c *Config) {
			c.Server.KnownHosts = filepath.Join(dir, "garbage")
			writeFile(t, c.Server.KnownHosts, "this is not a known_hosts line\n", 0o644)
		}, classified{slow: true, result: ResultHandshake, words: []string{"known_hosts", "no valid entries"}}},
		{"known_hosts writable by group", func(c *Config) {
			c.Server.KnownHosts = filepath.Join(dir, "shared_known_hosts")
			data, _ := os.ReadFile(f.knownHosts)
			writeFile(t, c.Server.KnownHosts, string(data), 0o664)
		}, classified{permanent: true, result: ResultHandshake, words: []string{"known_hosts", "0664", "group or others write it", "chmod go-w " + filepath.Join(dir, "shared_known_hosts")}}},
		{"identity readable by others", func(c *Config) {
			c.Server.Identities = []string{filepath.Join(dir, "loose")}
			data, _ := os.ReadFile(f.identity)
			writeFile(t, c.Server.Identities[0], string(data), 0o644)
		}, classified{permanent: true, result: ResultHandshake, words: []string{"too open", "chmod 600"}}},
		{"identity with a passphrase", func(c *Config) {
			c.Server.Identities = []string{filepath.Join(dir, "encrypted")}
			writeFile(t, c.Server.Identities[0], string(pem.EncodeToMemory(block)), 0o600)
		}, classified{permanent: true, result: ResultHandshake, words: []string{"passphrase", "unattended"}}},
		{"identity is the public key", func(c *Config) {
			c.Server.Identities = []string{filepath.Join(dir, "id.pub")}
			writeFile(t, c.Server.Identities[0], string(ssh.MarshalAuthorizedKey(f.signer.PublicKey())), 0o600)
		}, classified{permanent: true, result: ResultHandshake, words: []string{"this is a public key", filepath.Join(dir, "id") + ")"}}},
		{"identity missing", func(c *Config) { c.Server.Identities = []string{filepath.Join(dir, "absent")} },
			classified{slow: true, result: ResultHandshake, words: []string{"cannot read", "no such file or directory", "ssh-keygen -t ed25519"}}},
		{"identity empty", func(c *Config) {
			c.Server.Identities = []string{filepath.Join(dir, "empty")}
			writeFile(t, c.Server.Identities[0], "", 0o600)
		}, classified{slow: true, result: ResultHandshake, words: []string{"is empty", "rewritten"}}},
		{"identity cut short", func(c *Config) {
			c.Server.Identities = []string{filepath.Join(dir, "short")}
			data, _ := os.ReadFile(f.identity)
			writeFile(t, c.Server.Identities[0], string(data[:len(data)/2]), 0o600)
		}, classified{slow: true, result: ResultHandshake, words: []string{"not a private key rtunnel can use"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig(s, f, &logs{}, "127.0.0.1:22")
			c.setup(&cfg)
			check(t, runOnce(t, cfg), c.want)
		})
	}
}

func TestClassifyAuthRefused(t *testing.T) {
	s := newTestServer(t)
	s.refuseAuth.Store(true)
	f := newClientFiles(t, s)
	err := runOnce(t, baseConfig(s, f, &logs{}, "127.0.0.1:22"))
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err %T %v, want an AuthError", err, err)
	}
	// x/crypto's own words, which isAuthFailure relies on.
	if !strings.Contains(ae.Err.Error(), "ssh: unable to authenticate, attempted methods [none publickey], no supported methods remain") {
		t.Errorf("x/crypto's auth failure reads %q", ae.Err)
	}
	check(t, err, classified{result: ResultAuth, words: []string{"refused every key offered (key " + ssh.FingerprintSHA256(f.signer.PublicKey()), "authorized_keys", "permitlisten"}})
}

// A server that closes before its banner is what sshd past MaxStartups
// does: busy (busy_test.go has the variants).
func TestClassifyServerClosesAtOnce(t *testing.T) {
	s := newTestServer(t)
	s.closeAtOnce.Store(true)
	err := runOnce(t, baseConfig(s, newClientFiles(t, s), &logs{}, "127.0.0.1:22"))
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("err %T %v, want a BusyError", err, err)
	}
	check(t, err, classified{result: ResultBusy, busy: true, words: []string{"rt@127.0.0.1:", "closed the connection before it spoke SSH"}})
}

// A server that accepts TCP and never speaks, while its kernel ACKs (a
// connection waiting in a busy hub's accept queue looks the same): the
// handshake waits up to 4 x connect_timeout, once (no second attempt
// beside it), then gives up. It is retried as a busy hub is, not on an
// outage's growing waits.
func TestClassifySilentServer(t *testing.T) {
	s := newTestServer(t)
	s.silent.Store(true)
	cfg := baseConfig(s, newClientFiles(t, s), &logs{}, "127.0.0.1:22")
	cfg.Server.ConnectTimeout = time.Second
	start := time.Now()
	err := runOnce(t, cfg)
	took := time.Since(start)
	check(t, err, classified{result: ResultTimeout, busy: true, words: []string{"SSH handshake with rt@127.0.0.1:", "did not finish within 4s", "sshd never sent its version"}})
	if limit := slowHandshakeLimit * cfg.Server.ConnectTimeout; took < limit || took > limit+time.Second {
		t.Errorf("timed out after %v, want %d x connect_timeout (%v)", took, slowHandshakeLimit, limit)
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("%d connections to a silent server in one attempt, want 1", n)
	}
}

func TestClassifyForwardRefused(t *testing.T) {
	s := newTestServer(t)
	s.refuseForward.Store(true)
	cfg := baseConfig(s, newClientFiles(t, s), &logs{}, "127.0.0.1:22")
	cfg.ExitOnForwardFailure = true
	err := runOnce(t, cfg)
	check(t, err, classified{result: ResultForwardRefused, fast: true,
		words: []string{"refused remote forward localhost:2220->127.0.0.1:22", "the port is held", "older session of this key", "another process on the hub", "permitlisten", "port-forwarding"}})
}

func TestClassifyLinkDead(t *testing.T) {
	_, sc, r, _ := upWithEcho(t, nil)
	start := time.Now()
	sc.raw.Pause() // the server stops reading and answering
	err := r.wait(t, 5*time.Second)
	took := time.Since(start)
	check(t, err, classified{result: ResultTimeout, words: []string{"no answer from rt@127.0.0.1:", "(keepalive)"}})
	// interval x count_max = 600 ms
	if took > 600*time.Millisecond+time.Second {
		t.Errorf("dead link noticed after %v, want <= interval x count_max + 1s", took)
	}
}

func TestClassifyServerClosesSession(t *testing.T) {
	_, sc, r, _ := upWithEcho(t, nil)
	sc.Close()
	err := r.wait(t, 5*time.Second)
	check(t, err, classified{result: ResultClosed, words: []string{"rt@127.0.0.1:", "closed the connection"}})
}

// The reconnect loop ends on what Permanent calls permanent (rtunnel then
// exits 78) and keeps retrying the rest.
func TestPermanentEndsTheLoopOthersRetry(t *testing.T) {
	loop := func(cfg Config, retries int) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		n := 0
		tn := New(cfg)
		l := &reconnect.Loop{
			Policy:      reconnect.Policy{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2, FastRetry: 10 * time.Millisecond},
			Session:     tn.Session,
			IsPermanent: Permanent,
			IsFast:      FastRetry,
			OnRetry: func(int, error, time.Duration) {
				if n++; n >= retries {
					cancel()
				}
			},
		}
		err := l.Run(ctx)
		return n, err
	}
	s := newTestServer(t)
	f := newClientFiles(t, s)
	changed := newClientFiles(t, s)
	writeFile(t, changed.knownHosts, knownhosts.Line([]string{knownhosts.Normalize(s.addr())}, otherKey(t))+"\n", 0o644)
	n, err := loop(baseConfig(s, changed, &logs{}, "127.0.0.1:22"), 3)
	var pe *reconnect.PermanentError
	if !errors.As(err, &pe) || n != 0 {
		t.Errorf("changed host key: Run = %v after %d retries, want a PermanentError at once", err, n)
	}
	s.refuseAuth.Store(true)
	if n, err := loop(baseConfig(s, f, &logs{}, "127.0.0.1:22"), 3); err != nil || n != 3 {
		t.Errorf("refused key: Run = %v after %d retries, want retried until stopped", err, n)
	}
}
