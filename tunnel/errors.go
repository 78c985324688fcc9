package tunnel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"
)

// Connect results, used as the metrics label and in logs.
const (
	ResultOK             = "ok"
	ResultDial           = "dial"
	ResultHandshake      = "handshake"
	ResultHostKey        = "hostkey"
	ResultAuth           = "auth"
	ResultForwardRefused = "forward_refused"
	ResultTimeout        = "timeout"
	ResultClosed         = "closed" // a live session ended by the server or the network
	ResultBusy           = "busy"   // the hub closed the connection before its banner (MaxStartups)
)

// HostKeyKind says what was wrong with a server's host key.
type HostKeyKind int

// Host key problems. A changed or revoked key, or a host certificate
// refused for good, is permanent; an unknown host at run time (known_hosts
// lost its line since start-up) is Slow; a host certificate outside its
// validity window is retried: the hub's renewal (or this machine's clock)
// heals that.
const (
	HostUnknown HostKeyKind = iota
	HostChanged
	HostRevoked
	HostCertOnly        // a plain key offered where known_hosts trusts only a CA
	HostCertUntrusted   // a certificate signed by a CA known_hosts does not list for the host
	HostCertExpired     // a certificate past its validity window
	HostCertNotYetValid // a certificate before its validity window
	HostCertPrincipal   // a certificate for other host names
	HostCertInvalid     // a certificate x/crypto refused otherwise (signature, critical options)
)

// HostKeyError is a host key that known_hosts does not vouch for.
type HostKeyError struct {
	Kind       HostKeyKind
	Hop        string // user@host:port as configured
	Host       string // host as written
	Port       int
	KnownHosts string
	KeyType    string // type of the key the server offered
	Offered    string // its SHA256 fingerprint
	WantLines  []string
	AcceptNew  bool // the endpoint learns unknown hosts (seen only by rtunnel check)

	// For a host certificate: its signer, window and principals.
	CA         string // fingerprint of the CA that signed it
	Window     string // "valid from ... to ..."
	Principals []string
	Detail     string // x/crypto's reason, for HostCertInvalid
}

func (e *HostKeyError) name() string { return knownHostsName(e.Host, e.Port) }

func (e *HostKeyError) Error() string {
	switch e.Kind {
	case HostChanged:
		return fmt.Sprintf("HOST KEY FOR %s HAS CHANGED: the server offered %s %s, but %s says otherwise (%s). "+
			"Someone could be intercepting the connection, or the server was reinstalled. rtunnel will not connect. "+
			"If the change is expected, remove the old line and add the new key (ssh-keygen -R %s -f %s; then ssh-keyscan as for a new host)",
			e.Hop, e.KeyType, e.Offered, e.KnownHosts, strings.Join(e.WantLines, ", "), knownHostsName(e.Host, e.Port), e.KnownHosts)
	case HostRevoked:
		return fmt.Sprintf("host key of %s (%s %s) is marked @revoked in %s: rtunnel will not connect", e.Hop, e.KeyType, e.Offered, e.KnownHosts)
	case HostCertOnly:
		return fmt.Sprintf("%s trusts only a certificate authority for %s, but the server offered a plain %s key %s, no certificate. "+
			"Give the server a host certificate (ssh-keygen -s CA -h -n %s; HostCertificate in sshd_config), or add its key: %s",
			e.KnownHosts, e.name(), e.KeyType, e.Offered, e.Host, keyscanCommand(e.Host, e.Port, e.KeyType, e.KnownHosts))
	case HostCertUntrusted:
		return fmt.Sprintf("host certificate of %s (%s) is signed by CA %s, which %s does not list as @cert-authority for %s: rtunnel will not connect. "+
			"Add that CA's line if you trust it, or have the host signed by the CA you list", e.Hop, e.Offered, e.CA, e.KnownHosts, e.name())
	case HostCertExpired, HostCertNotYetValid:
		what := "has expired"
		if e.Kind == HostCertNotYetValid {
			what = "is not valid yet (is this machine's clock right?)"
		}
		return fmt.Sprintf("host certificate of %s (%s, CA %s) %s: %s. rtunnel retries; renew it on the server (ssh-keygen -s CA -h)",
			e.Hop, e.Offered, e.CA, what, e.Window)
	case HostCertPrincipal:
		return fmt.Sprintf("host certificate of %s (%s, CA %s) is for %s, not %s: rtunnel will not connect. Sign it with -n %s, or connect by a name it holds",
			e.Hop, e.Offered, e.CA, strings.Join(e.Principals, ","), e.Host, e.Host)
	case HostCertInvalid:
		return fmt.Sprintf("host certificate of %s (%s, CA %s) was refused: %s: rtunnel will not connect", e.Hop, e.Offered, e.CA, e.Detail)
	}
	return fmt.Sprintf("host %s is not in %s (it offered %s key %s). rtunnel never trusts an unknown host. "+
		"Check the fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then add it with: %s",
		knownHostsName(e.Host, e.Port), e.KnownHosts, e.KeyType, e.Offered, keyFileType(e.KeyType), keyscanCommand(e.Host, e.Port, e.KeyType, e.KnownHosts))
}

// knownHostsName is how known_hosts spells host:port.
func knownHostsName(host string, port int) string {
	return knownhosts.Normalize(net.JoinHostPort(host, strconv.Itoa(port)))
}

func keyFileType(t string) string {
	switch {
	case strings.Contains(t, "ed25519"):
		return "ed25519"
	case strings.Contains(t, "ecdsa"):
		return "ecdsa"
	}
	return "rsa"
}

// keyscanCommand is the ssh-keyscan line that appends host's key to file;
// keyType "" asks for every type.
func keyscanCommand(host string, port int, keyType, file string) string {
	args := []string{"ssh-keyscan"}
	if port != 22 {
		args = append(args, "-p", strconv.Itoa(port))
	}
	if keyType != "" {
		args = append(args, "-t", keyFileType(keyType))
	}
	return strings.Join(append(args, host, ">>", file), " ")
}

// FileFault says what is wrong with a key or known_hosts file, which
// decides whether waiting can help (see Permanent and Slow).
type FileFault int

const (
	// FileUnreadable: missing, unreadable, empty or cut short. At run time
	// (the file passed the start-up check) that is usually an editor or a
	// config-management tool rewriting it: retried slowly.
	FileUnreadable FileFault = iota
	// FileUnsafe: its mode or owner lets another user change it (or read
	// a private key). A configuration error: permanent.
	FileUnsafe
	// FileUnusable: not what it must be (a public key given as identity, a
	// passphrase-protected key, not a regular file, no entry for the
	// host). A configuration error: permanent.
	FileUnusable
)

// KeyFileError is a private key rtunnel cannot use.
type KeyFileError struct {
	Path  string
	Msg   string
	Fault FileFault
}

func (e *KeyFileError) Error() string { return fmt.Sprintf("identity %s: %s", e.Path, e.Msg) }

// KnownHostsError is a known_hosts file rtunnel cannot use.
type KnownHostsError struct {
	Path  string
	Err   error
	Fault FileFault
}

func (e *KnownHostsError) Error() string {
	return fmt.Sprintf("known_hosts %s: %v", e.Path, e.Err)
}

func (e *KnownHostsError) Unwrap() error { return e.Err }

// DialError is a TCP connect (or a jump hop's direct-tcpip open) that failed.
type DialError struct {
	Hop string
	Via string // previous hop, if dialed through a jump
	Err error
}

func (e *DialError) Error() string {
	if e.Via != "" {
		hint := ""
		if strings.Contains(e.Err.Error(), "administratively prohibited") {
			hint = fmt.Sprintf(" (the key's permitopen on %s must allow %s)", e.Via, e.Hop)
		}
		return fmt.Sprintf("cannot reach %s through %s: %v%s", e.Hop, e.Via, e.Err, hint)
	}
	return fmt.Sprintf("cannot connect to %s: %v", e.Hop, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// HandshakeError is an SSH handshake that failed for a reason other than
// the host key or authentication.
type HandshakeError struct {
	Hop string
	Err error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("SSH handshake with %s failed: %v", e.Hop, e.Err)
}
func (e *HandshakeError) Unwrap() error { return e.Err }

// BusyError is a first hop that closed the connection before it sent its
// SSH version line: what sshd does to a connection past MaxStartups.
type BusyError struct {
	Hop string
	Err error
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s closed the connection before it spoke SSH (%v): sshd does that past its MaxStartups, "+
		"while too many connections are still authenticating", e.Hop, e.Err)
}
func (e *BusyError) Unwrap() error { return e.Err }

// AuthError is the server refusing every key offered. It is retried: the
// key may be installed later, a certificate renewed, and a hub may refuse
// while it is overloaded.
type AuthError struct {
	Hop      string
	Offered  []string // each key and certificate offered, in order
	Notes    []string // certificates not offered, and why
	MaxTries bool     // the server stopped the attempt (MaxAuthTries)
	Err      error
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s refused ", e.Hop)
	if len(e.Offered) == 0 {
		b.WriteString("the login: no key or certificate could be offered")
	} else {
		fmt.Fprintf(&b, "every key offered (%s)", strings.Join(e.Offered, ", "))
	}
	fmt.Fprintf(&b, " (%v)", e.Err)
	for _, n := range e.Notes {
		b.WriteString("; ")
		b.WriteString(n)
	}
	if e.MaxTries {
		b.WriteString("; the server stopped after its MaxAuthTries: put the identity it accepts first")
	}
	b.WriteString(": check that the public key (or, for a certificate, its CA with cert-authority) is in the server's authorized_keys " +
		"(compare with ssh-keygen -lf authorized_keys there) and that the line's options parse: an invalid permitlisten/permitopen makes sshd reject the whole key")
	return b.String()
}
func (e *AuthError) Unwrap() error { return e.Err }

// AgentError is an ssh-agent rtunnel could not use: no socket, nobody
// listening, or no keys. It is retried: the agent may come back.
type AgentError struct {
	Socket string
	Err    error
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("ssh-agent at %s: %v: is the agent running, and is identity_agent its socket?", e.Socket, e.Err)
}
func (e *AgentError) Unwrap() error { return e.Err }

// TimeoutError is a step that did not finish in time.
type TimeoutError struct {
	Step  string
	Hop   string
	After time.Duration
	// Unanswered: the connection was made but the server never sent its
	// SSH version line. A hub working through a storm (sshd has not got
	// to the connection in its accept queue yet) or a hung sshd.
	Unanswered bool
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("%s with %s did not finish within %s", e.Step, e.Hop, e.After)
	if e.Unanswered {
		msg += ": connected, but sshd never sent its version (a hub busy with a storm of connections, or a hung sshd)"
	}
	return msg
}

// Timeout marks it as a net.Error-style timeout.
func (e *TimeoutError) Timeout() bool { return true }

// ForwardRefusedError is a tcpip-forward the server refused.
type ForwardRefusedError struct {
	Forward string
	Server  string
}

func (e *ForwardRefusedError) Error() string {
	if strings.HasPrefix(e.Forward, "/") {
		return fmt.Sprintf("server %s refused remote socket forward %s. sshd gives no reason; its log tells which: "+
			`"bind: Address already in use" means a socket file is left at that path (sshd_config StreamLocalBindUnlink yes lets a new session replace it); `+
			"a refusal without it means socket forwarding is off for this key: sshd_config needs AllowStreamLocalForwarding yes "+
			"(or all), and the key line's restrict needs port-forwarding (permitlisten does not govern sockets)",
			e.Server, e.Forward)
	}
	return fmt.Sprintf("server %s refused remote forward %s. sshd gives no reason; its log tells which: "+
		`"Address already in use" means the port is held, by an older session of this key that the server has not dropped yet `+
		"(freed when its ClientAlive check drops it) or by another process on the hub (ss -ltnp there shows which); "+
		`"but the request was denied" means the key's permitlisten does not allow it (permitlisten needs port-forwarding on the same key line)`,
		e.Server, e.Forward)
}

// LocalBindError is a local forward (ssh -L) whose address rtunnel cannot
// listen on. Like a refused forward it is retried: the port may be held by
// a process that is about to exit.
type LocalBindError struct {
	Forward string
	Listen  string
	Err     error
}

func (e *LocalBindError) Error() string {
	return fmt.Sprintf("local forward %s cannot listen on %s: %v (another process holds it, or the address is not on this machine: ss -ltnp shows who listens)",
		e.Forward, e.Listen, e.Err)
}

func (e *LocalBindError) Unwrap() error { return e.Err }

// LinkDeadError is a link that stopped answering.
type LinkDeadError struct {
	Hop    string
	Silent time.Duration
}

func (e *LinkDeadError) Error() string {
	return fmt.Sprintf("no answer from %s for %s (keepalive): the link is down or the server hangs", e.Hop, e.Silent.Round(time.Millisecond))
}

// Timeout marks it as a timeout.
func (e *LinkDeadError) Timeout() bool { return true }

// ClosedError is the server (or the network) ending a live session.
type ClosedError struct {
	Hop string
	Err error
}

func (e *ClosedError) Error() string {
	if e.Err == nil || errors.Is(e.Err, io.EOF) {
		return fmt.Sprintf("%s closed the connection", e.Hop)
	}
	return fmt.Sprintf("connection to %s lost: %v", e.Hop, e.Err)
}
func (e *ClosedError) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help: a changed or revoked
// host key, or a key or known_hosts file that is unsafe or unusable (a
// configuration error). Everything else (network, server refusals,
// timeouts, files that may be mid-rewrite) is worth retrying.
func Permanent(err error) bool {
	var (
		hk *HostKeyError
		kf *KeyFileError
		kh *KnownHostsError
	)
	switch {
	case errors.As(err, &hk):
		return hk.Kind != HostUnknown && hk.Kind != HostCertExpired && hk.Kind != HostCertNotYetValid
	case errors.As(err, &kf):
		return kf.Fault != FileUnreadable
	case errors.As(err, &kh):
		return kh.Fault != FileUnreadable
	}
	return false
}

// Slow reports whether err is a file problem that time may fix: a key or
// known_hosts file missing, unreadable or cut short, or a host missing from
// known_hosts. Start-up refuses these (Check); at run time the file was
// fine a moment ago, so it is most likely being rewritten, and the session
// is retried after the longest backoff wait instead of stopping for good.
func Slow(err error) bool {
	var (
		hk *HostKeyError
		kf *KeyFileError
		kh *KnownHostsError
	)
	switch {
	case errors.As(err, &hk):
		return hk.Kind == HostUnknown
	case errors.As(err, &kf):
		return kf.Fault == FileUnreadable
	case errors.As(err, &kh):
		return kh.Fault == FileUnreadable
	}
	return false
}

// Result maps a session error to a connect-attempt result label.
func Result(err error) string {
	var (
		hk *HostKeyError
		au *AuthError
		ag *AgentError
		fr *ForwardRefusedError
		lb *LocalBindError
		to *TimeoutError
		ld *LinkDeadError
		de *DialError
		ce *ClosedError
		be *BusyError
	)
	switch {
	case err == nil:
		return ResultOK
	case errors.As(err, &be):
		return ResultBusy
	case errors.As(err, &hk):
		return ResultHostKey
	case errors.As(err, &au), errors.As(err, &ag):
		return ResultAuth
	case errors.As(err, &fr), errors.As(err, &lb): // a forward that could not be set up, on either side
		return ResultForwardRefused
	case errors.As(err, &to), errors.As(err, &ld):
		return ResultTimeout
	case errors.As(err, &ce):
		return ResultClosed
	case errors.As(err, &de):
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ResultTimeout
		}
		return ResultDial
	}
	return ResultHandshake
}

// FastRetry reports whether err is a refused forward, which rtunnel retries
// quickly for a while: the port is usually held by our own dead session.
func FastRetry(err error) bool {
	var fr *ForwardRefusedError
	return errors.As(err, &fr)
}

// Busy reports whether err is a hub turning connections away before the
// SSH handshake (MaxStartups), or one that took the connection but never
// answered it within connect_timeout: retried after a spread-out wait of
// a few seconds. The host is up and its sshd behind; an outage's grown wait
// (16 s and more after a hub reboot) left a remote whose first connection
// waited out a storm in the accept queue waiting long after the hub had
// room (make fleet N=1000: all back 58 s after the reboot instead of 27).
func Busy(err error) bool {
	var be *BusyError
	var te *TimeoutError
	return errors.As(err, &be) || errors.As(err, &te) && te.Unanswered
}

// isAuthFailure recognises x/crypto's error for refused public keys, and
// sshd's disconnect after MaxAuthTries.
func isAuthFailure(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "unable to authenticate") || isMaxTries(err))
}

func isMaxTries(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Too many authentication failures")
}

// Refused reports whether err is the first hop refusing the TCP connect:
// its host is up but nothing listens on the port, typically sshd
// restarting. Such attempts are cheap for the server and worth repeating
// quickly for a short while.
func Refused(err error) bool {
	var de *DialError
	return errors.As(err, &de) && de.Via == "" && errors.Is(de.Err, syscall.ECONNREFUSED)
}
