package tunnel

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks one endpoint's host key against its known_hosts file.
type hostKeys struct {
	ep       *Endpoint
	callback ssh.HostKeyCallback

	mu  sync.Mutex
	err error // the typed error of the last failed check
}

// LoadKnownHosts parses a known_hosts file in OpenSSH format (hashed names,
// [host]:port, @revoked, @cert-authority lines are skipped by x/crypto).
// Like ssh, it refuses a file that group or others may write, or that
// another non-root user owns.
func LoadKnownHosts(path string) (ssh.HostKeyCallback, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &KnownHostsError{Path: path, Fault: FileUnreadable, Err: fmt.Errorf("%w; create it with ssh-keyscan -p PORT HOST >> %s", unwrapPathErr(err), path)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KnownHostsError{Path: path, Fault: FileUnusable, Err: errors.New("is not a regular file")}
	}
	if msg := unsafeFile(path, fi, false); msg != "" {
		return nil, &KnownHostsError{Path: path, Fault: FileUnsafe, Err: errors.New(msg)}
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		// No valid line at all: unreadable, or cut short by a rewrite.
		return nil, &KnownHostsError{Path: path, Fault: FileUnreadable, Err: err}
	}
	return cb, nil
}

func newHostKeys(ep *Endpoint) (*hostKeys, error) {
	cb, err := LoadKnownHosts(ep.KnownHosts)
	if err != nil {
		return nil, err
	}
	return &hostKeys{ep: ep, callback: cb}, nil
}

var (
	probeOnce sync.Once
	probeKey  ssh.PublicKey
)

// probe is a key no known_hosts can contain; checking it returns the keys
// known_hosts holds for a host (KeyError.Want).
func probe() ssh.PublicKey {
	probeOnce.Do(func() {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		probeKey, _ = ssh.NewPublicKey(pub)
	})
	return probeKey
}

var fakeRemote = &net.TCPAddr{IP: net.IPv4zero}

// Algorithms lists the host key algorithms to offer for this endpoint: only
// the types known_hosts holds for it, so a server with an ed25519 key and a
// known_hosts with only its RSA key still verifies (golang/go#29286). Nil
// means the host is unknown: connect with the defaults so the error can name
// the key the server offers.
func (h *hostKeys) Algorithms() []string {
	return algorithmsFor(h.callback, h.ep.Addr())
}

func algorithmsFor(cb ssh.HostKeyCallback, addr string) []string {
	var ke *knownhosts.KeyError
	if err := cb(addr, fakeRemote, probe()); !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	set := map[string]bool{}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			set[ssh.KeyAlgoRSASHA512] = true
			set[ssh.KeyAlgoRSASHA256] = true
		default:
			set[t] = true
		}
	}
	// OpenSSH's preference order first, then anything else known_hosts holds.
	var algos []string
	for _, a := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256} {
		if set[a] {
			algos = append(algos, a)
			delete(set, a)
		}
	}
	rest := make([]string, 0, len(set))
	for a := range set {
		rest = append(rest, a)
	}
	sort.Strings(rest)
	return append(algos, rest...)
}

// Check is the ssh.HostKeyCallback; it keeps a typed error for classification
// because the handshake wraps callback errors.
func (h *hostKeys) Check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.callback(hostname, remote, key)
	if err == nil {
		return nil
	}
	he := &HostKeyError{Hop: h.ep.String(), Host: h.ep.Host, Port: h.ep.Port, KnownHosts: h.ep.KnownHosts,
		KeyType: key.Type(), Offered: ssh.FingerprintSHA256(key)}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		he.Kind = HostRevoked
	case errors.As(err, &ke) && len(ke.Want) > 0:
		he.Kind = HostChanged
		for _, w := range ke.Want {
			he.WantLines = append(he.WantLines, fmt.Sprintf("%s:%d has %s", w.Filename, w.Line, w.Key.Type()))
		}
	case errors.As(err, &ke):
		he.Kind = HostUnknown
	default:
		h.setErr(&KnownHostsError{Path: h.ep.KnownHosts, Fault: FileUnusable, Err: err})
		return err
	}
	h.setErr(he)
	return he
}

func (h *hostKeys) setErr(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

// Err is the typed error of the last failed check, if any.
func (h *hostKeys) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
