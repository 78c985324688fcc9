package tunnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Step is one verdict of Probe.
type Step struct {
	Name   string // what was tried, e.g. "connect tunnel@vpn:22", "forward localhost:2220"
	OK     bool
	Detail string // what happened
	Fix    string // what to change, when !OK
}

// Probe does once, step by step, what a session does, and reports a verdict
// per step: for each hop, connect (TCP, or a direct-tcpip channel through
// the previous hop), host key, authentication; on the server, each forward
// requested and at once cancelled; then each local target dialed from here.
// A failed hop ends the chain's steps; local targets are dialed anyway.
// Every wait is bounded by the hop's connect timeout, and every connection
// is closed (and its goroutines gone) before Probe returns.
func Probe(ctx context.Context, cfg Config, report func(Step)) {
	t := New(cfg)
	var wg sync.WaitGroup
	if chain := t.probeChain(ctx, &wg, report); chain != nil {
		t.probeForwards(ctx, chain[len(chain)-1], report)
		t.probeLocalForwards(ctx, chain[len(chain)-1], &wg, report)
		closeAndWait(chain, &wg)
	} else {
		t.probeLocalForwards(ctx, nil, &wg, report)
	}
	t.probeLocals(ctx, report)
}

func closeAndWait(chain []*hop, wg *sync.WaitGroup) {
	closeChain(chain)
	for _, h := range chain {
		_ = h.client.Wait()
	}
	wg.Wait()
}

// probeChain connects hop by hop as dialChain does, reporting each step. It
// returns the live chain, or nil after a failed step. wg counts the
// goroutines that answer each hop's global requests.
func (t *Tunnel) probeChain(ctx context.Context, wg *sync.WaitGroup, report func(Step)) []*hop {
	var chain []*hop
	fail := func(s Step) []*hop {
		report(s)
		closeAndWait(chain, wg)
		return nil
	}
	for i, ep := range t.cfg.hops() {
		creds, err := loadCredentials(ctx, ep)
		if err != nil {
			var ag *AgentError
			if errors.As(err, &ag) {
				return fail(Step{Name: "identity agent " + ep.IdentityAgent, Detail: err.Error(), Fix: "start the agent and load the key (ssh-add), or fix identity_agent"})
			}
			return fail(Step{Name: "identity " + strings.Join(ep.Identities, ","), Detail: err.Error(), Fix: "fix the key or certificate file named above"})
		}
		defer creds.close()
		hk, err := newHostKeys(ep, t.log)
		if err != nil {
			return fail(Step{Name: "known_hosts " + ep.KnownHosts, Detail: err.Error(), Fix: "fix the known_hosts file named above"})
		}
		// A check never writes known_hosts: accept-new learns at rtunnel up.
		hk.readOnly = true
		// Remember the key the server offers, to show its fingerprint. The
		// handshake calls this from its own goroutine, which may outlive a
		// timed-out handshake.
		var (
			mu      sync.Mutex
			offered ssh.PublicKey
		)
		check := hk.callback
		hk.callback = func(host string, remote net.Addr, key ssh.PublicKey) error {
			if !bytes.Equal(key.Marshal(), probe().Marshal()) {
				mu.Lock()
				offered = key
				mu.Unlock()
			}
			return check(host, remote, key)
		}

		name := "connect " + ep.String()
		var raw net.Conn
		detail := "TCP connection to " + ep.Addr()
		if i == 0 {
			raw, err = t.dialTCP(ctx, ep)
		} else {
			prev := chain[i-1].ep
			detail = fmt.Sprintf("direct-tcpip channel to %s through %s", ep.Addr(), prev)
			raw, err = dialThrough(ctx, chain[i-1], ep)
		}
		if err != nil {
			return fail(Step{Name: name, Detail: err.Error(), Fix: dialFix(err, ep, i, chain)})
		}
		report(Step{Name: name, OK: true, Detail: detail})

		h, err := handshake(ctx, raw, ep, creds, hk)
		mu.Lock()
		seen := offered
		mu.Unlock()
		keyName := knownHostsName(ep.Host, ep.Port)
		offeredKeys := strings.Join(creds.labels, ", ")
		var (
			hke *HostKeyError
			ae  *AuthError
		)
		switch {
		case errors.As(err, &hke):
			return fail(Step{Name: "host key " + ep.String(), Detail: hke.Error(), Fix: hostKeyFix(hke, keyName)})
		case seen == nil:
			detail := "the server offered no host key"
			if err != nil {
				detail = err.Error()
			} else {
				closeAndWait([]*hop{h}, &sync.WaitGroup{})
			}
			return fail(Step{Name: "SSH handshake " + ep.String(), Detail: detail,
				Fix: "is an OpenSSH sshd answering there? A port that accepts TCP but speaks no SSH, or a server under load (MaxStartups), ends here"})
		}
		report(Step{Name: "host key " + ep.String(), OK: true,
			Detail: fmt.Sprintf("%s %s matches %s under the name %s", seen.Type(), ssh.FingerprintSHA256(seen), ep.KnownHosts, keyName)})
		switch {
		case errors.As(err, &ae):
			detail := fmt.Sprintf("%s refused %s for user %s", ep.Addr(), offeredKeys, ep.User)
			for _, n := range ae.Notes {
				detail += "; " + n
			}
			return fail(Step{Name: "auth " + ep.String(), Detail: detail,
				Fix: fmt.Sprintf("compare the fingerprints with `ssh-keygen -l -f ~%s/.ssh/authorized_keys` on %s (for a certificate: its CA's cert-authority line). If it is listed, the line's options are invalid: "+
					`permitlisten="none", "" or "localhost:0" make sshd reject the whole key (write the line with rtunnel authorized-key)`, ep.User, ep.Host)})
		case err != nil:
			return fail(Step{Name: "auth " + ep.String(), Detail: err.Error(), Fix: "the connection ended during login; see the server's sshd log"})
		}
		accepted := offeredKeys
		if len(creds.labels) > 1 {
			accepted = "one of " + offeredKeys
		}
		report(Step{Name: "auth " + ep.String(), OK: true, Detail: fmt.Sprintf("%s accepted for user %s", accepted, ep.User)})
		chain = append(chain, h)
		// As a session does: every global request (hostkeys-00 after
		// login, ClientAlive) gets a "no"; the loop ends when the
		// connection closes.
		wg.Add(1)
		go func() {
			defer wg.Done()
			ssh.DiscardRequests(h.reqs)
		}()
	}
	return chain
}

func dialFix(err error, ep *Endpoint, i int, chain []*hop) string {
	var to *TimeoutError
	if i == 0 {
		if errors.As(err, &to) {
			return "no answer within connect_timeout: the host is down, or a firewall drops the packets"
		}
		return fmt.Sprintf("nothing accepts connections at %s: check the address and port, that sshd runs there, and that a firewall lets this machine in", ep.Addr())
	}
	prev := chain[i-1].ep.String()
	msg := err.Error()
	switch {
	case strings.Contains(msg, "administratively prohibited"):
		return fmt.Sprintf("the key's permitopen on %s must allow %s exactly as written here (write the line with rtunnel authorized-key --role a-remote-vpn --port %d)",
			prev, ep.Addr(), ep.Port)
	case errors.As(err, &to):
		return fmt.Sprintf("%s did not open the channel within connect_timeout", prev)
	}
	return fmt.Sprintf("%s could not connect to %s: nothing listens there (Appendix A: is the master's rtunnel up, holding that port on %s?)",
		prev, ep.Addr(), prev)
}

func hostKeyFix(e *HostKeyError, keyName string) string {
	switch e.Kind {
	case HostChanged:
		return fmt.Sprintf("if %s was reinstalled, replace its line in %s (ssh-keygen -R '%s' -f %s); otherwise do not connect: someone may be in the middle",
			e.Hop, e.KnownHosts, keyName, e.KnownHosts)
	case HostRevoked:
		return "the key is revoked: do not connect"
	case HostUnknown:
		if e.AcceptNew {
			return fmt.Sprintf("strict_host_key_checking is accept-new: rtunnel up will add %s %s to %s at its first connect; check the fingerprint on the server (ssh-keygen -l -f /etc/ssh/ssh_host_%s_key.pub) first",
				e.KeyType, e.Offered, e.KnownHosts, keyFileType(e.KeyType))
		}
	default:
		return "see the message: the host certificate or the known_hosts line for its CA needs fixing"
	}
	return fmt.Sprintf("check %s on the server (ssh-keygen -l -f /etc/ssh/ssh_host_%s_key.pub), then add it to %s under the name %s",
		e.Offered, keyFileType(e.KeyType), e.KnownHosts, keyName)
}

// probeForwards requests each forward on the server and cancels it at once.
func (t *Tunnel) probeForwards(ctx context.Context, server *hop, report func(Step)) {
	abort := func() { server.conn.Close() }
	timeout := server.ep.ConnectTimeout
	for _, f := range t.cfg.Forwards {
		name := "forward " + f.Remote()
		st := &fwdState{f: f}
		var (
			ok    bool
			reply []byte
		)
		err, timedOut := bounded(ctx, timeout, abort, func() error {
			var err error
			ok, reply, err = server.client.SendRequest(st.requestType(), true, st.payload())
			return err
		})
		switch {
		case timedOut:
			report(Step{Name: name, Detail: fmt.Sprintf("%s did not answer the %s request within %s", server.ep, st.requestType(), timeout),
				Fix: "the server hangs or the link drops packets"})
			return
		case err != nil:
			report(Step{Name: name, Detail: fmt.Sprintf("connection to %s lost: %v", server.ep, err), Fix: "see the server's sshd log"})
			return
		}
		if ok {
			detail := fmt.Sprintf("%s allowed it (requested, then cancelled)", server.ep)
			if f.RemotePath != "" {
				detail = fmt.Sprintf("%s allowed it (requested, then cancelled; sshd leaves the socket file behind, "+
					"so the hub needs StreamLocalBindUnlink yes or the tunnel's next request for it is refused)", server.ep)
			}
			if f.RemotePath == "" && f.RemotePort == 0 && len(reply) >= 4 {
				st.allocated.Store(binary.BigEndian.Uint32(reply))
				detail = fmt.Sprintf("%s allowed it and picked port %d for this check (requested, then cancelled; every session gets a port of its own)",
					server.ep, st.allocated.Load())
			}
			var cancelled bool
			cerr, ctimedOut := bounded(ctx, timeout, abort, func() error {
				var err error
				cancelled, _, err = server.client.SendRequest(st.cancelType(), true, st.payload())
				return err
			})
			if ctimedOut || cerr != nil || !cancelled {
				detail = fmt.Sprintf("%s allowed it; cancelling it failed, the server frees it when this check disconnects", server.ep)
			}
			report(Step{Name: name, OK: true, Detail: detail})
			if ctimedOut || cerr != nil {
				return
			}
			continue
		}
		if f.RemotePath != "" {
			report(Step{Name: name, Detail: fmt.Sprintf("%s refused streamlocal-forward %s", server.ep, f.RemotePath),
				Fix: "permitlisten does not govern sockets: the hub's sshd_config needs AllowStreamLocalForwarding yes (or remote) for this user, " +
					"StreamLocalBindUnlink yes if a socket file is left from an earlier session, the key's line needs port-forwarding after restrict, " +
					"and the hub user must be able to create the file in that directory"})
			continue
		}
		report(t.refusedStep(ctx, server, f, name))
	}
}

// probeLocalForwards checks each local forward as a session would use it:
// its address can be bound here (then released), and the server opens a
// channel to its target (then closed). wg counts the goroutines that drain
// each channel's requests until the server confirms the close.
func (t *Tunnel) probeLocalForwards(ctx context.Context, server *hop, wg *sync.WaitGroup, report func(Step)) {
	for _, lf := range t.cfg.LocalForwards {
		ln, err := net.Listen(network(lf.Listen), lf.Listen)
		if err != nil {
			report(Step{Name: "local forward listen " + lf.Listen, Detail: err.Error(),
				Fix: "another process holds it (ss -ltnp shows which; a running rtunnel up with this config holds it itself) or the address is not on this machine"})
		} else {
			ln.Close()
			report(Step{Name: "local forward listen " + lf.Listen, OK: true, Detail: "can be bound here (bound, then released)"})
		}
		if server == nil {
			continue
		}
		l := &localState{lf: lf}
		typ, payload := l.openPayload(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		name := "local forward connect " + lf.Connect
		var openErr error
		_, timedOut := bounded(ctx, server.ep.ConnectTimeout, func() { server.conn.Close() }, func() error {
			ch, reqs, err := server.client.OpenChannel(typ, payload)
			if err == nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ssh.DiscardRequests(reqs)
				}()
				ch.Close()
			}
			openErr = err
			return err
		})
		switch {
		case timedOut:
			report(Step{Name: name, Detail: fmt.Sprintf("%s did not open the channel within connect_timeout", server.ep), Fix: "the target drops packets as the hub sees it"})
			return
		case openErr != nil && strings.Contains(openErr.Error(), "administratively prohibited"):
			report(Step{Name: name, Detail: openErr.Error(),
				Fix: fmt.Sprintf(`the key's line on %s needs permitopen="%s" (rtunnel authorized-key --permitopen %s prints it)`, server.ep, lf.Connect, lf.Connect)})
		case openErr != nil:
			report(Step{Name: name, Detail: openErr.Error(), Fix: fmt.Sprintf("nothing answers at %s as %s sees it: check the target's address from the hub", lf.Connect, server.ep)})
		default:
			report(Step{Name: name, OK: true, Detail: fmt.Sprintf("%s opened %s to it (opened, then closed)", server.ep, typ)})
		}
	}
}

// refusedStep explains a refused forward. sshd's refusal carries no reason,
// so it opens a direct-tcpip channel to the blocking address
// 255.255.255.255:9 that the guide's lines permit: refused as
// "administratively prohibited" means port forwarding is off for this key
// (restrict without port-forwarding, so permitlisten is ignored); a failed
// connect means forwarding is on and the port itself was refused.
func (t *Tunnel) refusedStep(ctx context.Context, server *hop, f Forward, name string) Step {
	s := Step{Name: name, Detail: fmt.Sprintf("%s refused tcpip-forward %s", server.ep, f.Remote())}
	var derr error
	_, timedOut := bounded(ctx, server.ep.ConnectTimeout, func() { server.conn.Close() }, func() error {
		c, err := server.client.Dial("tcp", "255.255.255.255:9")
		if c != nil {
			c.Close()
		}
		derr = err
		return err
	})
	held := fmt.Sprintf("port held by an older session or not allowed by permitlisten: if rtunnel up runs with this config, it holds the port itself; "+
		"a dead session keeps it until the server's ClientAlive check drops it (ClientAliveInterval 15, ClientAliveCountMax 3: about 45 s); "+
		`otherwise the key's line on %s needs permitlisten="%s" (rtunnel authorized-key prints it)`, server.ep, f.Remote())
	switch {
	case !timedOut && derr != nil && strings.Contains(derr.Error(), "administratively prohibited"):
		s.Detail += "; a direct-tcpip open of 255.255.255.255:9 was refused too: port forwarding is off for this key"
		s.Fix = "permitlisten needs port-forwarding: after restrict, the key's line must also say port-forwarding, or sshd ignores permitlisten and refuses every forward " +
			"(or sshd_config has AllowTcpForwarding no/local). The line: rtunnel authorized-key --role ... --port " + fmt.Sprint(f.RemotePort)
	case !timedOut && derr != nil:
		s.Detail += "; port forwarding itself is on for this key"
		s.Fix = held
	default:
		s.Fix = held + "; also, permitlisten needs port-forwarding on the same line"
	}
	return s
}

// probeLocals dials each forward's local target from this machine.
func (t *Tunnel) probeLocals(ctx context.Context, report func(Step)) {
	seen := map[string]bool{}
	for _, f := range t.cfg.Forwards {
		if seen[f.Local] {
			continue
		}
		seen[f.Local] = true
		name := "local target " + f.Local
		d := net.Dialer{Timeout: t.cfg.Server.ConnectTimeout}
		c, err := d.DialContext(ctx, network(f.Local), f.Local)
		if err != nil {
			s := Step{Name: name, Detail: "local target refused: " + err.Error(),
				Fix: fmt.Sprintf("nothing listens on %s as seen from this machine: start the service (for the remote's own sshd: systemctl enable --now ssh) or fix the forward's local:", f.Local)}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.Detail = "local target does not answer: " + err.Error()
				s.Fix = fmt.Sprintf("%s is down, or a firewall drops the packets", f.Local)
			}
			report(s)
			continue
		}
		c.Close()
		kind := "TCP connections"
		if network(f.Local) == "unix" {
			kind = "connections on the socket"
		}
		report(Step{Name: name, OK: true, Detail: "accepts " + kind + " (forward " + f.String() + ")"})
	}
}
