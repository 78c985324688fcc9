package tunnel

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks one endpoint's host key against its known_hosts file.
type hostKeys struct {
	ep       *Endpoint
	callback ssh.HostKeyCallback // certificates and plain keys
	plain    ssh.HostKeyCallback // x/crypto's knownhosts check: plain keys, @revoked
	cas      []authority
	log      *slog.Logger
	readOnly bool // never learn (accept-new), as for rtunnel check

	mu  sync.Mutex
	err error // the typed error of the last failed check
}

// LoadKnownHosts parses a known_hosts file in OpenSSH format: hashed names,
// [host]:port, @revoked and @cert-authority lines. Like ssh, it refuses a
// file that group or others may write, or that another non-root user owns.
func LoadKnownHosts(path string) (ssh.HostKeyCallback, error) {
	kh, cas, err := loadKnownHosts(path, false)
	if err != nil {
		return nil, err
	}
	return certChecker(kh, cas), nil
}

// loadKnownHosts returns x/crypto's check of the file's plain keys and
// its @cert-authority lines. With mayBeMissing (accept-new) an absent file
// is an empty one, as for ssh.
func loadKnownHosts(path string, mayBeMissing bool) (ssh.HostKeyCallback, []authority, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && mayBeMissing {
		return knownhostsEmpty, nil, nil
	}
	if err != nil {
		return nil, nil, &KnownHostsError{Path: path, Fault: FileUnreadable, Err: fmt.Errorf("%w; create it with ssh-keyscan -p PORT HOST >> %s", unwrapPathErr(err), path)}
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &KnownHostsError{Path: path, Fault: FileUnusable, Err: errors.New("is not a regular file")}
	}
	if msg := unsafeFile(path, fi, false); msg != "" {
		return nil, nil, &KnownHostsError{Path: path, Fault: FileUnsafe, Err: errors.New(msg)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &KnownHostsError{Path: path, Fault: FileUnreadable, Err: unwrapPathErr(err)}
	}
	kh, err := knownhosts.New(path)
	if err != nil {
		// No valid line at all: unreadable, or cut short by a rewrite.
		return nil, nil, &KnownHostsError{Path: path, Fault: FileUnreadable, Err: err}
	}
	return kh, authorities(data), nil
}

// knownhostsEmpty is the check of an empty known_hosts: every host unknown.
func knownhostsEmpty(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }

func newHostKeys(ep *Endpoint, log *slog.Logger) (*hostKeys, error) {
	kh, cas, err := loadKnownHosts(ep.KnownHosts, ep.AcceptNew)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &hostKeys{ep: ep, callback: certChecker(kh, cas), plain: kh, cas: cas, log: log}, nil
}

// learns reports whether an unknown key is written to known_hosts: with
// accept-new, outside rtunnel check, and when no CA vouches for the host
// (then a plain key is a missing certificate, not a new host).
func (h *hostKeys) learns() bool { return h.ep.AcceptNew && !h.readOnly && !h.hasAuthority() }

// fork is a checker with the same files and its own last error, for a
// parallel connect attempt.
func (h *hostKeys) fork() *hostKeys {
	return &hostKeys{ep: h.ep, callback: h.callback, plain: h.plain, cas: h.cas, log: h.log, readOnly: h.readOnly}
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
// When an @cert-authority line names the host, the certificate algorithms
// come first (the server shows its certificate only when asked for one),
// then the plain keys known_hosts holds, or x/crypto's defaults.
func (h *hostKeys) Algorithms() []string {
	plain := algorithmsFor(h.callback, h.ep.hostKeyAddr())
	if !h.hasAuthority() {
		return plain
	}
	if plain == nil {
		plain = ssh.SupportedAlgorithms().HostKeys
	}
	return append(slices.Clone(certAlgorithms), plain...)
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
// The name checked is the endpoint's (or its HostKeyAlias), never the
// address the connection went to: a hop behind a jump is dialed by name.
func (h *hostKeys) Check(_ string, remote net.Addr, key ssh.PublicKey) error {
	addr := h.ep.hostKeyAddr()
	err := h.callback(addr, remote, key)
	if err == nil {
		return nil
	}
	host, port := h.ep.Host, h.ep.Port
	if h.ep.HostKeyAlias != "" {
		host, port = h.ep.HostKeyAlias, 22
	}
	he := &HostKeyError{Hop: h.ep.String(), Host: host, Port: port, KnownHosts: h.ep.KnownHosts,
		KeyType: key.Type(), Offered: ssh.FingerprintSHA256(key), AcceptNew: h.ep.AcceptNew}
	if cert, ok := key.(*ssh.Certificate); ok {
		return h.checkCertificate(addr, remote, cert, err, he)
	}
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
	case errors.As(err, &ke) && h.learns():
		return h.learn(key, he)
	case errors.As(err, &ke) && h.hasAuthority():
		he.Kind = HostCertOnly
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
