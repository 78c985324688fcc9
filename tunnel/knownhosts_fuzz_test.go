package tunnel

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// FuzzKnownHosts feeds arbitrary known_hosts files and host names through
// everything rtunnel does with them: loading, choosing host key algorithms
// (algorithmsFor), checking offered keys (hostKeys.Check) and `rtunnel
// check` (Check). Nothing may panic; every failure must be one of rtunnel's
// typed errors, classified either permanent or slow (a file that may be
// mid-rewrite), never both, never neither; a key that is accepted must be
// one the offered algorithms allow (else golang/go#29286 is back).
//
// Seeds are in testdata/fuzz/FuzzKnownHosts. Run longer with:
//
//	go test -run XXX -fuzz FuzzKnownHosts -fuzztime 30s ./tunnel/
func FuzzKnownHosts(f *testing.F) {
	keys := fuzzKeys(f)
	f.Add([]byte("[127.0.0.1]:2222 "+authorized(keys[0])), "127.0.0.1", uint16(2222))
	f.Add([]byte("hub.example.com,10.0.0.1 "+authorized(keys[1])), "hub.example.com", uint16(22))
	f.Add([]byte("@revoked * "+authorized(keys[0])+"* "+authorized(keys[0])), "anything", uint16(22))
	f.Add([]byte("@cert-authority *.example.com "+authorized(keys[1])), "a.example.com", uint16(22))
	f.Add([]byte("|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= "+authorized(keys[0])), "hub", uint16(22))
	f.Add([]byte("!bad,* "+authorized(keys[0])+"[::1]:22 "+authorized(keys[1])), "::1", uint16(22))
	f.Add([]byte("# only a comment\n\n   \n"), "hub", uint16(22))
	f.Add([]byte("hub ssh-ed25519 AAAA\n"), "hub", uint16(22))

	dir := f.TempDir()
	path := filepath.Join(dir, "known_hosts")
	f.Fuzz(func(t *testing.T, data []byte, host string, port uint16) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cb, err := LoadKnownHosts(path)
		if err != nil {
			var kh *KnownHostsError
			if !errors.As(err, &kh) || Permanent(err) == Slow(err) || err.Error() == "" {
				t.Fatalf("LoadKnownHosts: %T %v, want a *KnownHostsError, permanent or slow", err, err)
			}
			return
		}
		ep := &Endpoint{User: "rt", Host: host, Port: int(port), KnownHosts: path, Identities: []string{filepath.Join(dir, "absent")}}
		algos := algorithmsFor(cb, ep.Addr())
		for _, a := range algos {
			if !knownAlgorithm(a) {
				t.Fatalf("algorithmsFor offers %q", a)
			}
		}
		hk := &hostKeys{ep: ep, callback: cb}
		for _, k := range keys {
			err := hk.Check(knownhosts.Normalize(ep.Addr()), fakeRemote, k)
			if err == nil {
				if !allows(algos, k.Type()) {
					t.Fatalf("%s key accepted for %q but the offered algorithms %v exclude it", k.Type(), ep.Addr(), algos)
				}
				continue
			}
			typed := hk.Err()
			var he *HostKeyError
			var khe *KnownHostsError
			switch {
			case errors.As(typed, &he):
				if (he.Kind == HostChanged) != (len(he.WantLines) > 0) {
					t.Fatalf("HostKeyError kind %v with want lines %v", he.Kind, he.WantLines)
				}
			case errors.As(typed, &khe):
			default:
				t.Fatalf("Check failed with %v but recorded %T %v, want a typed error", err, typed, typed)
			}
			if Permanent(typed) == Slow(typed) || typed.Error() == "" {
				t.Fatalf("host key failure %T %v is not either permanent or slow, with a message", typed, typed)
			}
		}
		// rtunnel check: reports, never panics.
		for _, e := range Check(Config{Server: *ep}) {
			if e.Error() == "" {
				t.Fatal("Check returned an empty error")
			}
		}
	})
}

func fuzzKeys(f *testing.F) []ssh.PublicKey {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	a, _ := ssh.NewPublicKey(edPub)
	b, _ := ssh.NewPublicKey(&ec.PublicKey)
	return []ssh.PublicKey{a, b}
}

func authorized(k ssh.PublicKey) string { return string(ssh.MarshalAuthorizedKey(k)) }

func knownAlgorithm(a string) bool {
	for _, k := range ssh.SupportedAlgorithms().HostKeys {
		if a == k {
			return true
		}
	}
	for _, k := range ssh.InsecureAlgorithms().HostKeys {
		if a == k {
			return true
		}
	}
	return strings.HasSuffix(a, "-cert-v01@openssh.com")
}

// allows reports whether offering algos lets a server use a keyType key.
func allows(algos []string, keyType string) bool {
	if algos == nil { // nil: x/crypto's defaults
		return true
	}
	for _, a := range algos {
		if a == keyType || keyType == ssh.KeyAlgoRSA && bytes.HasPrefix([]byte(a), []byte("rsa-sha2-")) {
			return true
		}
	}
	return false
}
