// Package authkeys builds the locked-down authorized_keys lines of the setup
// guide's role table (docs/TOPOLOGIES.md), one per role a key plays on a hub,
// and refuses the option values OpenSSH rejects in authorized_keys.
//
// It owns the exact text of those lines; `rtunnel authorized-key` and the
// topology tests print and install them. It imports the standard library and
// golang.org/x/crypto/ssh (to parse the public key) only, never another
// rtunnel package.
package authkeys

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Block is the permitlisten/permitopen value that matches no real request:
// an address that parses but can never be bound or reached. It is the only
// way to switch one direction off in authorized_keys ("none" is invalid there).
const Block = "255.255.255.255:9"

// Role is what a key does on the host whose authorized_keys holds the line.
type Role string

// The rows of the guide's role table.
const (
	DirectRemote  Role = "direct-remote"   // remote's key on master: -R its port
	AMaster       Role = "a-master"        // master's key on vpn: -R 2210 (its own sshd)
	ARemoteVPN    Role = "a-remote-vpn"    // remote's key on vpn: ProxyJump to localhost:2210 only
	ARemoteMaster Role = "a-remote-master" // remote's key on master (second hop): -R its port
	BRemote       Role = "b-remote"        // remote X's key on vpn: -R 222X
	BMaster       Role = "b-master"        // master's key on vpn: ProxyJump to the 222X ports only
)

// roleInfo says where a role's ports go: listen (the key may -R them) or
// open (the key may ProxyJump / direct-tcpip to them). The other side is Block.
type roleInfo struct {
	listen bool
	keyOf  string
	on     string
	uses   string
}

var roles = map[Role]roleInfo{
	DirectRemote:  {listen: true, keyOf: "remote (Direct)", on: "master", uses: "rtunnel's forward of localhost:PORT on master"},
	AMaster:       {listen: true, keyOf: "master (Appendix A)", on: "vpn", uses: "master's rtunnel exposing its sshd on the vpn's localhost:PORT (2210)"},
	ARemoteVPN:    {listen: false, keyOf: "remote (Appendix A)", on: "vpn", uses: "the remote's jump through the vpn to localhost:PORT (2210)"},
	ARemoteMaster: {listen: true, keyOf: "remote (Appendix A, second hop)", on: "master", uses: "the remote's forward of localhost:PORT (2220) on master"},
	BRemote:       {listen: true, keyOf: "remote X (Appendix B)", on: "vpn", uses: "remote X's forward of localhost:PORT (222X) on the vpn"},
	BMaster:       {listen: false, keyOf: "master (Appendix B)", on: "vpn", uses: "master's ssh -J through the vpn to localhost:PORT of each remote"},
}

// Roles lists every role in the order of the guide's table.
func Roles() []Role {
	return []Role{DirectRemote, AMaster, ARemoteVPN, ARemoteMaster, BRemote, BMaster}
}

// Describe is one line of help for a role: whose key, on which host, for what.
func (r Role) Describe() string {
	ri, ok := roles[r]
	if !ok {
		return ""
	}
	side := "permitlisten"
	if !ri.listen {
		side = "permitopen"
	}
	return fmt.Sprintf("key of %s on %s: %s (ports go in %s)", ri.keyOf, ri.on, ri.uses, side)
}

// Listens reports whether the role's ports go in permitlisten: the key may
// forward them (-R) rather than open them.
func (r Role) Listens() bool { return roles[r].listen }

// ParseRole accepts a role name as listed by Roles.
func ParseRole(s string) (Role, error) {
	if _, ok := roles[Role(s)]; ok {
		return Role(s), nil
	}
	names := make([]string, 0, len(roles))
	for _, r := range Roles() {
		names = append(names, string(r))
	}
	return "", fmt.Errorf("unknown role %q: use one of %s", s, strings.Join(names, ", "))
}

// Spec is one key's line.
type Spec struct {
	Role  Role
	Ports []int  // in order; each becomes one permitlisten or permitopen="localhost:N"
	From  string // optional from="..." list of addresses or CIDRs
	// AnyPort lets a listening key ask for port 0 (the hub picks):
	// permitlisten="localhost:*", as sshd checks port 0 against "*" only.
	AnyPort bool
	// Opens are the host:port targets of the key's local forwards (ssh
	// -L, rtunnel's local_forwards): each becomes permitopen="host:port",
	// in place of the blocking permitopen of a listening role.
	Opens []string
	// SocketsOnly allows a listening key no TCP port at all: it forwards
	// Unix sockets only, which permitlisten does not govern.
	SocketsOnly bool
	// CertAuthority makes the line trust certificates signed by the key
	// (a CA's public key): cert-authority in front of the guide's options.
	CertAuthority bool
	// Principals is an optional principals="..." list for a cert-authority
	// line; without it sshd wants the login user among the certificate's.
	Principals string
}

// Options returns the option list of the line, without the key, exactly as
// the guide writes it: roles that listen name permitlisten first, roles that
// jump name their permitopen options first.
func Options(s Spec) (string, error) {
	ri, ok := roles[s.Role]
	if !ok {
		_, err := ParseRole(string(s.Role))
		return "", err
	}
	if len(s.Ports) == 0 && !s.AnyPort && !(ri.listen && s.SocketsOnly) {
		if ri.listen {
			return "", errors.New("no port: give the port this key may listen on (-R), e.g. --port 2220")
		}
		return "", errors.New("no port: give the port this key may open (ProxyJump), e.g. --port 2210")
	}
	seen := map[int]bool{}
	var ports []string
	for _, p := range s.Ports {
		if p < 1 || p > 65535 {
			return "", fmt.Errorf("port %d: %v", p, errPortRange)
		}
		if seen[p] {
			return "", fmt.Errorf("port %d is given twice", p)
		}
		seen[p] = true
		ports = append(ports, "localhost:"+strconv.Itoa(p))
	}
	kind := "permitopen"
	if ri.listen {
		kind = "permitlisten"
	}
	if s.AnyPort {
		if !ri.listen {
			return "", fmt.Errorf("--any-port is for a key that listens (remote: localhost:0); %s opens ports", s.Role)
		}
		ports = append(ports, "localhost:*")
	}
	if len(ports) == 0 { // a socket-only key: no TCP port to listen on
		ports = append(ports, Block)
	}
	var own []string
	for _, p := range ports {
		own = append(own, permit(kind, p))
	}
	var opens []string
	for _, o := range s.Opens {
		if err := CheckPermit("permitopen", o); err != nil {
			return "", err
		}
		opens = append(opens, permit("permitopen", o))
	}
	other := []string{permit("permitlisten", Block)}
	if ri.listen {
		other = []string{permit("permitopen", Block)}
		if len(opens) > 0 {
			other = opens
		}
	} else {
		own = append(own, opens...)
	}
	opts := []string{"restrict", "port-forwarding"}
	if s.CertAuthority {
		opts = append([]string{"cert-authority"}, opts...)
	}
	opts = append(opts, own...)
	opts = append(opts, other...)
	opts = append(opts, `command="/bin/false"`)
	if s.From != "" {
		if err := CheckFrom(s.From); err != nil {
			return "", err
		}
		opts = append(opts, `from="`+s.From+`"`)
	}
	if s.Principals != "" {
		if !s.CertAuthority {
			return "", errors.New("principals= applies to a cert-authority line only: give the CA's public key with --ca")
		}
		if strings.ContainsAny(s.Principals, "\" \t\n") {
			return "", fmt.Errorf("principals %q: a comma-separated list of names without spaces or quotes", s.Principals)
		}
		opts = append(opts, `principals="`+s.Principals+`"`)
	}
	return strings.Join(opts, ","), nil
}

func permit(kind, value string) string { return kind + `="` + value + `"` }

// Line builds the full authorized_keys line for pubKey, the content of a
// .pub file ("ssh-ed25519 AAAA... comment").
func Line(s Spec, pubKey []byte) (string, error) {
	key, err := PublicKey(pubKey)
	if err != nil {
		return "", err
	}
	opts, err := Options(s)
	if err != nil {
		return "", err
	}
	return opts + " " + key, nil
}

// PublicKey checks a .pub file's content and returns it as "type base64
// [comment]" on one line. It refuses a private key, several keys, and a
// line that already carries options.
func PublicKey(data []byte) (string, error) {
	text := strings.TrimSpace(string(data))
	if text == "" {
		return "", errors.New("the public key file is empty")
	}
	if strings.Contains(text, "PRIVATE KEY") {
		return "", errors.New("this is a private key: give the .pub file next to it (never copy a private key to a hub)")
	}
	if strings.Contains(text, "\n") {
		return "", errors.New("the file holds more than one line: give one key's .pub file")
	}
	pub, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return "", fmt.Errorf("not an OpenSSH public key (%v): give the .pub file written by ssh-keygen", err)
	}
	if len(options) > 0 {
		return "", fmt.Errorf("the line already has options (%s): give the plain .pub file, the options come from --role", strings.Join(options, ","))
	}
	if len(rest) > 0 {
		return "", errors.New("the file holds more than one key: give one key's .pub file")
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment != "" {
		line += " " + comment
	}
	return line, nil
}

var errPortRange = errors.New("out of range 1-65535")

// ParsePort reads one port as a user gives it, and explains the forms that
// OpenSSH rejects in authorized_keys: "none", "" and port 0 make sshd refuse
// the whole key (auth-options.c validates every permitlisten/permitopen value
// as host:port with a port of 1-65535 or *), and it logs only "Failed
// publickey" at the usual LogLevel.
func ParsePort(s string) (int, error) {
	t := strings.TrimSpace(s)
	why := "sshd refuses the whole key at login (LogLevel VERBOSE shows only \"Failed publickey\"). " +
		"To block a direction, the line already uses permit...=\"" + Block + "\", the only form that works"
	switch {
	case t == "" || t == `""`:
		return 0, errors.New(`empty port: permitlisten="" is invalid in authorized_keys; ` + why)
	case strings.EqualFold(strings.Trim(t, `"`), "none"):
		return 0, errors.New(`"none": "PermitListen none" is valid in sshd_config only; permitlisten="none" in authorized_keys is a parse error and ` + why)
	}
	t = strings.TrimPrefix(strings.Trim(t, `"`), "localhost:")
	p, err := strconv.Atoi(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number (the host is always localhost: the guide binds tunnel ports on the hub's loopback)", s)
	}
	if p == 0 {
		return 0, errors.New(`port 0: permitlisten="localhost:0" is invalid in authorized_keys (port 0 fails validation); ` +
			`for a forward whose port the hub picks (remote: localhost:0) use --any-port (permitlisten="localhost:*"). ` + why)
	}
	if p < 0 || p > 65535 {
		return 0, fmt.Errorf("port %d: %v", p, errPortRange)
	}
	return p, nil
}

// ParsePorts reads a comma-separated list of ports.
func ParsePorts(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		p, err := ParsePort(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// CheckFrom validates a from= value: comma-separated IP addresses or CIDRs,
// each optionally negated with '!'. Host names are refused: with sshd's
// default UseDNS no they never match.
func CheckFrom(s string) error {
	if strings.ContainsAny(s, "\" \t") {
		return fmt.Errorf("from %q: no quotes or spaces; write addresses or CIDRs separated by commas, e.g. 203.0.113.0/24", s)
	}
	for _, part := range strings.Split(s, ",") {
		p := strings.TrimPrefix(part, "!")
		if p == "" {
			return fmt.Errorf("from %q: empty entry", s)
		}
		if net.ParseIP(p) != nil {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err == nil {
			continue
		}
		return fmt.Errorf("from %q: %q is not an IP address or CIDR (host names never match with sshd's default UseDNS no)", s, p)
	}
	return nil
}

// CheckPermit validates one permitlisten/permitopen value as OpenSSH's
// authorized_keys parser does: host:port, port 1-65535 or "*".
func CheckPermit(kind, value string) error {
	if value == "" {
		return fmt.Errorf(`%s="" is invalid in authorized_keys: sshd refuses the whole key; use "%s" to block`, kind, Block)
	}
	if strings.EqualFold(value, "none") {
		return fmt.Errorf(`%s="none" is invalid in authorized_keys (valid only in sshd_config): sshd refuses the whole key; use "%s" to block`, kind, Block)
	}
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		if kind == "permitlisten" && !strings.Contains(value, ":") {
			host, port = "*", value
		} else {
			return fmt.Errorf("%s=%q is not host:port: sshd refuses the whole key", kind, value)
		}
	}
	if host == "" {
		return fmt.Errorf("%s=%q has no host: sshd refuses the whole key", kind, value)
	}
	if port == "*" {
		return nil
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%s=%q: port must be 1-65535 or *; sshd refuses the whole key (port 0 fails validation)", kind, value)
	}
	return nil
}
