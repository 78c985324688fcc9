package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/rtunnel/rtunnel/tunnel"
)

// stepFix is the advice printed under a failed `check --connect` step: what
// usually causes the failure and what to change. tunnel.Probe reports
// typed errors only; the words for the operator live here.
func stepFix(s tunnel.Step) string {
	var (
		ag  *tunnel.AgentError
		kf  *tunnel.KeyFileError
		kh  *tunnel.KnownHostsError
		hk  *tunnel.HostKeyError
		au  *tunnel.AuthError
		fp  *tunnel.ForwardProbeError
		lt  *tunnel.LocalTargetError
		lf  *tunnel.LocalForwardError
		to  *tunnel.TimeoutError
		de  *tunnel.DialError
		he  *tunnel.HandshakeError
		ce  *tunnel.ClosedError
		dns *net.DNSError
	)
	err := s.Err
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ag):
		return "start the agent and load the key (ssh-add), or fix identity_agent"
	case errors.As(err, &kf):
		return fmt.Sprintf("the message says what is wrong with %s; fix the key or certificate file, then run rtunnel check again", kf.Path)
	case errors.As(err, &kh):
		return fmt.Sprintf("the message says what is wrong with %s; fix it, then run rtunnel check again", kh.Path)
	case errors.As(err, &hk):
		return hostKeyFix(hk, s.KnownHostsName)
	case errors.As(err, &au):
		return authFix(s, au)
	case errors.As(err, &fp):
		return forwardFix(s, fp)
	case errors.As(err, &lf):
		return localForwardFix(lf)
	case errors.As(err, &lt):
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Sprintf("%s is down, or a firewall drops the packets", lt.Addr)
		}
		return fmt.Sprintf("nothing listens on %s as seen from this machine: start the service "+
			"(for the remote's own sshd: systemctl enable --now ssh) or fix the forward's local:", lt.Addr)
	case s.Hop == nil:
		return ""
	case s.Prev != nil && errors.As(err, &de):
		return jumpDialFix(s, de)
	case errors.As(err, &dns):
		return dnsFix(s.Hop.Host, dns)
	case errors.As(err, &to):
		return timeoutFix(s, to)
	case errors.As(err, &de):
		return dialFix(s.Hop, de)
	case strings.HasPrefix(s.Name, "auth "):
		return "the connection ended during login; see the server's sshd log"
	case errors.As(err, &he):
		return "is an OpenSSH sshd answering there? A port that accepts TCP but speaks no SSH, or a server under load (MaxStartups), ends here"
	case errors.As(err, &ce):
		return "see the server's sshd log"
	}
	return ""
}

func hostKeyFix(e *tunnel.HostKeyError, keyName string) string {
	switch e.Kind {
	case tunnel.HostChanged:
		return fmt.Sprintf("if %s was reinstalled, replace its line in %s (ssh-keygen -R '%s' -f %s); otherwise do not connect: someone may be in the middle",
			e.Hop, e.KnownHosts, keyName, e.KnownHosts)
	case tunnel.HostRevoked:
		return "the key is revoked: do not connect"
	}
	return fmt.Sprintf("check %s on the server (ssh-keygen -l -f /etc/ssh/ssh_host_%s_key.pub), then add it to %s under the name %s",
		e.Offered, hostKeyFileType(e.KeyType), e.KnownHosts, keyName)
}

// hostKeyFileType names the sshd host key file that holds a key of type t.
func hostKeyFileType(t string) string {
	for _, kind := range []string{"ed25519", "ecdsa"} {
		if strings.Contains(t, kind) {
			return kind
		}
	}
	return "rsa"
}

func authFix(s tunnel.Step, e *tunnel.AuthError) string {
	fix := fmt.Sprintf("compare the fingerprints with `ssh-keygen -l -f ~%s/.ssh/authorized_keys` on %s (for a certificate: its CA's cert-authority line). "+
		`If it is listed, the line's options are invalid: permitlisten="none", "" or "localhost:0" make sshd reject the whole key (write the line with rtunnel authorized-key)`,
		s.Hop.User, s.Hop.Host)
	if e.MaxTries {
		fix = "the server stopped after MaxAuthTries attempts: offer fewer keys. " + fix
	}
	return fix
}

func dnsFix(host string, e *net.DNSError) string {
	if e.IsNotFound {
		return fmt.Sprintf("the name %s does not resolve on this machine: check its spelling in the config, and this machine's DNS (getent hosts %s)", host, host)
	}
	return fmt.Sprintf("resolving %s failed (%s): this machine's DNS server is down or unreachable; rtunnel up retries until it answers", host, e.Err)
}

func timeoutFix(s tunnel.Step, e *tunnel.TimeoutError) string {
	switch {
	case e.Step == "SSH handshake":
		return "the server accepted TCP but did not complete the SSH handshake in time: a server under load (MaxStartups), or a port that speaks no SSH"
	case strings.Contains(e.Step, "forward"):
		return "the server hangs or the link drops packets"
	}
	return fmt.Sprintf("no answer from %s within connect_timeout: the host is down, or a firewall drops the packets", s.Hop.Addr())
}

func dialFix(ep *tunnel.Endpoint, e *tunnel.DialError) string {
	switch {
	case errors.Is(e, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing accepts connections at %s: check the address and port, that sshd runs there, and that a firewall lets this machine in", ep.Addr())
	case errors.Is(e, syscall.EHOSTUNREACH), errors.Is(e, syscall.ENETUNREACH):
		return fmt.Sprintf("no route to %s from this machine: check its network connection and the address", ep.Addr())
	}
	return fmt.Sprintf("could not connect to %s: check the address and port, this machine's network, and that sshd runs there", ep.Addr())
}

func jumpDialFix(s tunnel.Step, e *tunnel.DialError) string {
	prev, ep := s.Prev.String(), s.Hop
	if strings.Contains(e.Err.Error(), "administratively prohibited") {
		return fmt.Sprintf("the key's permitopen on %s must allow %s exactly as written here (write the line with rtunnel authorized-key --role a-remote-vpn --port %d)",
			prev, ep.Addr(), ep.Port)
	}
	return fmt.Sprintf("%s could not connect to %s: nothing listens there (Appendix A of docs/TOPOLOGIES.md: is the master's rtunnel up, holding that port on %s?)",
		prev, ep.Addr(), prev)
}

// forwardFix explains a refused forward. The ClientAlive figures are
// deploy/hub/HUB.md's measurements ("A dead session holds its port").
func forwardFix(s tunnel.Step, e *tunnel.ForwardProbeError) string {
	remote := e.Refused.Forward
	port := remote
	if s.Forward != nil {
		port = fmt.Sprint(s.Forward.RemotePort)
	}
	if e.Socket {
		return "permitlisten does not govern sockets: the hub's sshd_config needs AllowStreamLocalForwarding yes (or remote) for this user, " +
			"StreamLocalBindUnlink yes if a socket file is left from an earlier session, the key's line needs port-forwarding after restrict, " +
			"and the hub user must be able to create the file in that directory"
	}
	if e.ForwardingOff {
		return "permitlisten needs port-forwarding: after restrict, the key's line must also say port-forwarding, or sshd ignores permitlisten and refuses every forward " +
			"(or sshd_config has AllowTcpForwarding no/local). The line: rtunnel authorized-key --role ... --port " + port
	}
	fix := fmt.Sprintf("the hub refused the port: it is held, or permitlisten does not allow it; the hub's sshd log tells which "+
		`(at LogLevel VERBOSE: "bind [127.0.0.1]:%[1]s: Address already in use" = held, "... but the request was denied" = not allowed). `+
		"Held: by rtunnel up running with this config (it holds the port itself); by a dead earlier session of this key until the hub's ClientAlive check "+
		"drops it (ClientAliveInterval 15, ClientAliveCountMax 3: up to 2 x 15 x 4 = 120 s on OpenSSH 9.2, longer while something keeps connecting "+
		"to the port; deploy/hub/HUB.md, section 5); or by another process on the hub (ss -ltnp 'sport = :%[1]s' there). "+
		`Not allowed: the key's line on %[2]s needs permitlisten="%[3]s" (rtunnel authorized-key prints it)`, port, e.Refused.Server, remote)
	if e.Inconclusive {
		fix += "; also, permitlisten needs port-forwarding on the same line"
	}
	return fix
}

func localForwardFix(e *tunnel.LocalForwardError) string {
	var to *tunnel.TimeoutError
	switch {
	case e.Connect == "":
		return "another process holds it (ss -ltnp shows which; a running rtunnel up with this config holds it itself) or the address is not on this machine"
	case errors.As(e, &to):
		return "the target drops packets as the hub sees it"
	case e.Prohibited():
		return fmt.Sprintf(`the key's line on %s needs permitopen="%s" (rtunnel authorized-key --permitopen %s prints it)`, e.Server, e.Connect, e.Connect)
	}
	return fmt.Sprintf("nothing answers at %s as %s sees it: check the target's address from the hub", e.Connect, e.Server)
}
