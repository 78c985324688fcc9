// Package config turns rtunnel's YAML file into validated structs.
//
// It owns parsing, defaults and every error message about the file; it
// imports only the standard library, go.yaml.in/yaml/v3 and its own
// config/sshconfig (an ssh_config alias is translated like the YAML), never
// another rtunnel package. Errors name file:line and the key, so an operator can fix
// the file without guessing.
package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Defaults, chosen to match the setup guide's autossh unit and OpenSSH.
const (
	DefaultPath            = "/etc/rtunnel/rtunnel.yaml"
	DefaultShutdownGrace   = 5 * time.Second
	DefaultConnectTimeout  = 15 * time.Second
	DefaultKeepalive       = 15 * time.Second
	DefaultKeepaliveCount  = 3
	DefaultForwardRetry    = time.Second
	DefaultForwardRetryFor = 2 * time.Minute
	DefaultMaxConnections  = 1024
	DefaultBackoffInitial  = time.Second
	DefaultBackoffMax      = 60 * time.Second
	DefaultBackoffMult     = 2.0
	DefaultBackoffJitter   = 0.2
	DefaultBackoffReset    = 60 * time.Second
)

// Config is one validated configuration file.
type Config struct {
	Path          string
	Log           Log
	ShutdownGrace time.Duration
	Metrics       *Metrics
	Tunnels       []Tunnel
}

// Log selects the log level and format.
type Log struct {
	Level string // debug | info | warn | error
	// Format is auto | text | json | journal; auto lets cmd pick journal
	// under systemd's journal and text elsewhere.
	Format string
}

// Metrics configures the Prometheus/health endpoint.
type Metrics struct {
	Listen      string
	AllowRemote bool
}

// Tunnel is one SSH session to a server with its forwards.
type Tunnel struct {
	Name   string
	Line   int // line of the tunnel in the file, for messages
	Server Endpoint
	// Hubs are every server the tunnel may use, in order of preference,
	// when server: is a list; Hubs[0] is Server. Nil for a single server.
	Hubs []Endpoint
	// HubMode says how Hubs are used: HubsFailover (one at a time) or
	// HubsAll (every hub at once). Empty for a single server.
	HubMode              string
	Jump                 []Endpoint
	Forwards             []Forward
	LocalForwards        []LocalForward
	Keepalive            Keepalive
	ConnectTimeout       time.Duration
	ExitOnForwardFailure bool
	ForwardRetry         time.Duration
	ForwardRetryFor      time.Duration
	MaxConnections       int
	Backoff              Backoff
	// Algorithms are the ciphers/kex_algorithms/macs/host_key_algorithms
	// specs, in OpenSSH syntax as written; cmd resolves them against
	// x/crypto's lists.
	Algorithms []AlgorithmSpec
	// SSHConfig says where an ssh_config alias came from; nil without one.
	SSHConfig *SSHConfigUse
	// StaleSessionPoke: when a forward is refused because the port is still
	// held, connect to it through the hub so the hub notices its dead
	// session sooner (stale_session_poke, default true).
	StaleSessionPoke bool
}

// How a tunnel uses a list of hubs (hubs:).
const (
	HubsFailover = "failover" // one hub at a time, the first reachable one preferred
	HubsAll      = "all"      // the same forwards on every hub at once
)

// AlgorithmSpec is one algorithm list as written: "aes128-ctr,..." or with
// OpenSSH's +, - or ^ prefix.
type AlgorithmSpec struct {
	Key  string // ciphers, kex_algorithms, macs or host_key_algorithms
	Spec string
	Line int    // in the rtunnel config
	From string // "FILE:LINE" when the spec came from ssh_config
}

// SSHConfigUse records an alias resolved from an ssh_config file.
type SSHConfigUse struct {
	Path     string
	Alias    string
	Resolved []Resolved // what each value is and where it came from, for rtunnel check
}

// Resolved is one value of a tunnel set through ssh_config resolution.
type Resolved struct {
	Key   string // rtunnel's key, e.g. server, identity, keepalive.interval
	Value string
	From  string // "FILE:LINE Directive", "rtunnel config" or "default"
}

// Endpoint is an SSH server: the tunnel's server or a ProxyJump hop.
type Endpoint struct {
	User string
	Host string
	Port int
	// Identities are key files, offered in order (identity: one or a list).
	Identities    []string
	Certificate   string // certificate: PATH (CertificateFile)
	IdentityAgent string // identity_agent: socket path, or the literal SSH_AUTH_SOCK
	KnownHosts    string
	HostKeyAlias  string // host_key_alias (HostKeyAlias)
	// AcceptNew is strict_host_key_checking: accept-new; the default, yes,
	// never trusts an unknown host.
	AcceptNew      bool
	HashKnownHosts bool // hash_known_hosts: names written by accept-new are hashed
	ConnectTimeout time.Duration
	Line           int
}

// String gives user@host:port as the user would write it.
func (e Endpoint) String() string {
	return e.User + "@" + net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// Forward is one remote forward: the server binds Remote (or the Unix
// socket RemotePath), connections go to Local (or the socket LocalPath).
// Remote.Port 0 lets the server pick the port.
type Forward struct {
	Remote     Addr
	RemotePath string
	Local      Addr
	LocalPath  string
	Line       int
}

// RemoteString is the server side as written: host:port or the path.
func (f Forward) RemoteString() string { return sideString(f.Remote, f.RemotePath) }

// LocalString is this machine's side: host:port or the path.
func (f Forward) LocalString() string { return sideString(f.Local, f.LocalPath) }

// String is the forward's label in logs and metrics: "localhost:2220->localhost:22".
func (f Forward) String() string { return f.RemoteString() + "->" + f.LocalString() }

// LocalForward is one ssh -L forward: rtunnel listens on Listen (or the
// socket ListenPath) here, and the hub connects each connection to Connect
// (or the socket ConnectPath on the hub).
type LocalForward struct {
	Listen      Addr
	ListenPath  string
	Connect     Addr
	ConnectPath string
	Line        int
}

// ListenString is the side rtunnel listens on: host:port or the path.
func (f LocalForward) ListenString() string { return sideString(f.Listen, f.ListenPath) }

// ConnectString is the target as the hub sees it: host:port or the path.
func (f LocalForward) ConnectString() string { return sideString(f.Connect, f.ConnectPath) }

func sideString(a Addr, path string) string {
	if path != "" {
		return path
	}
	return a.String()
}

// Addr is a host and port. Host is kept exactly as written: sshd's
// permitlisten compares the text.
type Addr struct {
	Host string
	Port int
}

func (a Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// Keepalive mirrors OpenSSH's ServerAliveInterval / ServerAliveCountMax.
type Keepalive struct {
	Interval time.Duration
	CountMax int
}

// Backoff controls reconnect waits.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
	ResetAfter time.Duration
}

// MaxErrors is how many problems Parse lists; past it, it only counts them.
const MaxErrors = 20

// Error is one problem in the file, located by line.
type Error struct {
	File string
	Line int
	Key  string // dotted path, e.g. tunnels[0].forwards[1].remote
	Msg  string
	// More is set only on the last element of an Errors that was cut at
	// MaxErrors: how many problems were found and not listed. Msg says so.
	More int
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, up to MaxErrors and a last
// element counting the rest; it is what Load returns on failure.
type Errors []*Error

// Count is the number of problems found, listed or not.
func (es Errors) Count() int {
	n := len(es)
	if n > 0 && es[n-1].More > 0 {
		n += es[n-1].More - 1
	}
	return n
}

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// ParseAddr parses host:port. The host may be a name, an IPv4 address or a
// bracketed IPv6 address; the port must be 1..65535 (0 only when allowZero).
func ParseAddr(s string, allowZero bool) (Addr, error) {
	if s == "" {
		return Addr{}, fmt.Errorf("empty address; want host:port, e.g. localhost:2220")
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return Addr{}, fmt.Errorf("%q is not host:port (IPv6 needs brackets: [::1]:22)", s)
	}
	if host == "" {
		return Addr{}, fmt.Errorf("%q has no host; write localhost:%s to bind only on the server's loopback", s, portStr)
	}
	if err := checkHost(host); err != nil {
		return Addr{}, fmt.Errorf("%q: %v", s, err)
	}
	port, err := parsePort(portStr, allowZero)
	if err != nil {
		return Addr{}, fmt.Errorf("%q: %v", s, err)
	}
	return Addr{Host: host, Port: port}, nil
}

// ParseEndpoint parses user@host[:port]; the port defaults to 22 as in ssh.
func ParseEndpoint(s string) (Endpoint, error) {
	at := strings.LastIndex(s, "@")
	if at <= 0 {
		return Endpoint{}, fmt.Errorf("%q has no user; write user@host[:port]", s)
	}
	user, rest := s[:at], s[at+1:]
	if i := strings.IndexFunc(user, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '@' || r == ':' || r == '/'
	}); i >= 0 {
		return Endpoint{}, fmt.Errorf("%q: user %q contains %q; write user@host[:port] with a plain user name", s, user, []rune(user[i:])[0])
	}
	if rest == "" {
		return Endpoint{}, fmt.Errorf("%q has no host; write user@host[:port]", s)
	}
	host, port := rest, 22
	if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		// A bracketed IPv6 address without port, as ssh accepts.
		host = rest[1 : len(rest)-1]
	} else if strings.HasPrefix(rest, "[") || strings.Count(rest, ":") == 1 {
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%q is not user@host[:port] (IPv6 goes in brackets: user@[::1]:22)", s)
		}
		host = h
		if port, err = parsePort(p, false); err != nil {
			return Endpoint{}, fmt.Errorf("%q: %v", s, err)
		}
	} else if strings.Contains(rest, ":") {
		// A bare IPv6 address without port, as ssh accepts.
		if net.ParseIP(rest) == nil {
			return Endpoint{}, fmt.Errorf("%q is not user@host[:port] (IPv6 with a port needs brackets)", s)
		}
	}
	if err := checkHost(host); err != nil {
		return Endpoint{}, fmt.Errorf("%q: %v", s, err)
	}
	return Endpoint{User: user, Host: host, Port: port}, nil
}

func parsePort(s string, allowZero bool) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || strconv.Itoa(p) != s {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	if p == 0 && allowZero {
		return 0, nil
	}
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d is out of range 1-65535", p)
	}
	return p, nil
}

func checkHost(h string) error {
	if h == "" {
		return fmt.Errorf("empty host")
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	if strings.Contains(h, ":") {
		if i := strings.IndexByte(h, '%'); i >= 0 && net.ParseIP(h[:i]) != nil {
			return fmt.Errorf("host %q: IPv6 zones (%s) are not supported; use a global or loopback address", h, h[i:])
		}
		return fmt.Errorf("host %q is not a valid IPv6 address", h)
	}
	if len(h) > 253 {
		return fmt.Errorf("host name longer than 253 characters")
	}
	for _, r := range h {
		ok := r == '-' || r == '.' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("host %q contains %q; use a DNS name or an IP address", h, r)
		}
	}
	return nil
}
