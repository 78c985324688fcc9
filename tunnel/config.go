package tunnel

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Endpoint is an SSH server to log in to: the tunnel's server or a hop.
type Endpoint struct {
	User string
	Host string // as the user wrote it; known_hosts is checked under this name
	Port int
	// Identities are private key files, offered in order within one
	// connection, each with the certificate KEY-cert.pub beside it first
	// (as ssh -i KEY does). Empty with an IdentityAgent: the agent's keys.
	Identities []string
	// Certificate is an explicit certificate (OpenSSH's CertificateFile),
	// offered with the identity or agent key it certifies.
	Certificate string
	// IdentityAgent is an ssh-agent socket; with Identities set, only the
	// agent's certificates for those keys are used (IdentitiesOnly).
	IdentityAgent string

	KnownHosts string // known_hosts file
	// HostKeyAlias is the name the host key is looked up (and a host
	// certificate's principal checked) under instead of Host, as OpenSSH's.
	HostKeyAlias string
	// AcceptNew writes an unknown host's key to KnownHosts and trusts it
	// (StrictHostKeyChecking accept-new); a changed key is still refused.
	AcceptNew bool
	// HashKnownHosts writes learned names hashed, as HashKnownHosts yes.
	HashKnownHosts bool

	ConnectTimeout time.Duration

	algorithms *algorithms // the tunnel's, set by setDefaults
}

// Addr is host:port as written by the user.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

// hostKeyAddr is host:port as known_hosts is searched: the HostKeyAlias
// alone (OpenSSH adds no port to it), else Addr.
func (e Endpoint) hostKeyAddr() string {
	if e.HostKeyAlias != "" {
		return net.JoinHostPort(e.HostKeyAlias, "22")
	}
	return e.Addr()
}

func (e Endpoint) String() string { return e.User + "@" + e.Addr() }

// Forward asks the server to listen on RemoteHost:RemotePort, or on the
// Unix socket RemotePath, and sends each connection to Local.
type Forward struct {
	RemoteHost string // sent literally: permitlisten="localhost:N" matches the text
	RemotePort int    // 0: the server picks a port, reported through Config.ForwardAllocated
	RemotePath string // a Unix socket on the server (streamlocal-forward@openssh.com); RemoteHost and RemotePort unused
	Local      string // host:port, or a Unix socket path (starting with /), dialed on this machine
}

// Remote is the server-side address: host:port or the socket path.
func (f Forward) Remote() string {
	if f.RemotePath != "" {
		return f.RemotePath
	}
	return net.JoinHostPort(f.RemoteHost, strconv.Itoa(f.RemotePort))
}

// String is the forward's label in logs and metrics.
func (f Forward) String() string { return f.Remote() + "->" + f.Local }

// LocalForward is ssh -L: rtunnel listens on Listen and sends each
// connection through the server (direct-tcpip) to Connect.
type LocalForward struct {
	Listen  string // host:port, or a Unix socket path, on this machine
	Connect string // host:port, or a Unix socket path, as the server resolves it
}

// String is the local forward's label in logs and metrics; the "L:" keeps
// it apart from a remote forward's.
func (l LocalForward) String() string { return "L:" + l.Listen + "->" + l.Connect }

// network is "unix" for a socket path, else "tcp".
func network(addr string) string {
	if strings.HasPrefix(addr, "/") {
		return "unix"
	}
	return "tcp"
}

// algorithms are the lists a hop offers, the tunnel's.
type algorithms struct {
	ciphers, keyExchanges, macs, hostKeys []string
}

// Config describes one tunnel. Zero durations take the package defaults.
type Config struct {
	Name     string
	Server   Endpoint
	Jump     []Endpoint // ProxyJump hops, first is dialed directly
	Forwards []Forward
	// LocalForwards are ssh -L forwards served through the server.
	LocalForwards []LocalForward

	// ForwardAllocated is told the port the server bound for a forward
	// that asked for port 0 when it comes up, and 0 when it goes down.
	// It is called from the session's goroutines and must not block.
	ForwardAllocated func(forward string, port int)

	KeepaliveInterval time.Duration
	KeepaliveCountMax int

	// ExitOnForwardFailure ends the session when a forward is refused (as
	// OpenSSH's option); otherwise the refused forward is retried on the live
	// session.
	ExitOnForwardFailure bool
	ForwardRetry         time.Duration // between re-requests of a refused forward
	ForwardRetryFor      time.Duration // how long to re-request at ForwardRetry
	ForwardRetryMax      time.Duration // longest wait after that window

	// Algorithm lists, resolved (see ResolveAlgorithms); nil is x/crypto's
	// defaults (for host keys: what known_hosts holds). They apply to every
	// hop.
	Ciphers           []string
	KeyExchanges      []string
	MACs              []string
	HostKeyAlgorithms []string

	MaxConnections int           // forwarded connections open at once
	ShutdownGrace  time.Duration // how long open connections may finish on stop

	// DisableStalePoke turns off the SYN from a silently dead connection's
	// own address that makes the server drop it (poke.go); the zero value
	// pokes.
	DisableStalePoke bool

	Log      *slog.Logger
	Observer Observer

	// DialContext dials TCP to the first hop; nil means a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (c *Config) setDefaults() {
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = 15 * time.Second
	}
	if c.KeepaliveCountMax <= 0 {
		c.KeepaliveCountMax = 3
	}
	if c.ForwardRetry <= 0 {
		c.ForwardRetry = time.Second
	}
	if c.ForwardRetryFor < 0 {
		c.ForwardRetryFor = 0
	}
	if c.ForwardRetryMax < c.ForwardRetry {
		c.ForwardRetryMax = 60 * time.Second
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 1024
	}
	if c.ShutdownGrace < 0 {
		c.ShutdownGrace = 0
	}
	algos := &algorithms{ciphers: c.Ciphers, keyExchanges: c.KeyExchanges, macs: c.MACs, hostKeys: c.HostKeyAlgorithms}
	for _, e := range c.hops() {
		if e.ConnectTimeout <= 0 {
			e.ConnectTimeout = 15 * time.Second
		}
		e.algorithms = algos
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.ForwardAllocated == nil {
		c.ForwardAllocated = func(string, int) {}
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
}

// hops lists every endpoint in dial order, the server last.
func (c *Config) hops() []*Endpoint {
	out := make([]*Endpoint, 0, len(c.Jump)+1)
	for i := range c.Jump {
		out = append(out, &c.Jump[i])
	}
	return append(out, &c.Server)
}

// Observer receives the session's events; health.Health implements it.
// Methods are called on the data path and must not block.
type Observer interface {
	ConnectAttempt(tunnel string)
	ConnectResult(tunnel, result string)
	Connected(tunnel string)
	Disconnected(tunnel string, err error)
	ForwardUp(tunnel, forward string)
	ForwardDown(tunnel, forward string)
	ForwardRefused(tunnel, forward string)
	KeepaliveRTT(tunnel string, d time.Duration)
	KeepaliveMissed(tunnel string)
	ConnOpened(tunnel, forward string)
	ConnClosed(tunnel, forward string)
	ConnRejected(tunnel, forward, reason string)
	Bytes(tunnel, forward, direction string, n int)
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) ConnectAttempt(string)               {}
func (NopObserver) ConnectResult(string, string)        {}
func (NopObserver) Connected(string)                    {}
func (NopObserver) Disconnected(string, error)          {}
func (NopObserver) ForwardUp(string, string)            {}
func (NopObserver) ForwardDown(string, string)          {}
func (NopObserver) ForwardRefused(string, string)       {}
func (NopObserver) KeepaliveRTT(string, time.Duration)  {}
func (NopObserver) KeepaliveMissed(string)              {}
func (NopObserver) ConnOpened(string, string)           {}
func (NopObserver) ConnClosed(string, string)           {}
func (NopObserver) ConnRejected(string, string, string) {}
func (NopObserver) Bytes(string, string, string, int)   {}
