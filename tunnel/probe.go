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

// Step is one verdict of Probe. It states what happened; what to do about
// a failure is for the caller to say, from Err and the hops.
type Step struct {
	Name   string // what was tried, e.g. "connect tunnel@vpn:22", "forward localhost:2220"
	OK     bool
	Detail string // what happened
	// Err is why the step failed (nil when OK), typed as a session's
	// errors are, so that Permanent and Result classify it as `up` would.
	Err error
	// Hop is the server the step talked to (nil for a local target); Prev
	// is the hop it was reached through, if any.
	Hop, Prev *Endpoint
	// Forward is the forward a "forward" or "local target" step is about.
	Forward *Forward
	// KnownHostsName is the name Hop's host key is looked up under.
	KnownHostsName string
}

// ForwardProbeError is a remote forward the server refused during Probe,
// with what a follow-up request (see refusedStep) learnt of the reason:
// sshd's refusal itself carries none.
type ForwardProbeError struct {
	Refused *ForwardRefusedError
	// Socket: a streamlocal (Unix socket) forward, which permitlisten does
	// not govern; no follow-up request is made for it.
	Socket bool
	// ForwardingOff: a direct-tcpip open was refused as "administratively
	// prohibited" too, so port forwarding is off for this key altogether.
	ForwardingOff bool
	// Inconclusive: the follow-up request got no answer in time.
	Inconclusive bool
}

func (e *ForwardProbeError) Error() string {
	switch {
	case e.ForwardingOff:
		return e.Refused.Error() + "; port forwarding is off for this key"
	case e.Inconclusive, e.Socket:
		return e.Refused.Error()
	}
	return e.Refused.Error() + "; port forwarding itself is on for this key"
}

func (e *ForwardProbeError) Unwrap() error { return e.Refused }

// LocalTargetError is a forward's local target that did not accept a
// connection from this machine.
type LocalTargetError struct {
	Addr string
	Err  error
}

func (e *LocalTargetError) Error() string { return fmt.Sprintf("local target %s: %v", e.Addr, e.Err) }
func (e *LocalTargetError) Unwrap() error { return e.Err }

// LocalForwardError is a local forward (-L) that failed its probe: its
// listen address cannot be bound here (Connect empty), or the server did
// not open a channel to its target.
type LocalForwardError struct {
	Listen, Connect string
	Server          string // the server asked to open the channel
	Err             error
}

func (e *LocalForwardError) Error() string {
	if e.Connect == "" {
		return fmt.Sprintf("local forward %s: cannot listen: %v", e.Listen, e.Err)
	}
	return fmt.Sprintf("local forward to %s through %s: %v", e.Connect, e.Server, e.Err)
}
func (e *LocalForwardError) Unwrap() error { return e.Err }

// Prohibited reports whether the server refused the channel by policy
// (permitopen), not because the target did not answer.
func (e *LocalForwardError) Prohibited() bool {
	return e.Err != nil && strings.Contains(e.Err.Error(), "administratively prohibited")
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
		var prev *Endpoint
		if i > 0 {
			prev = chain[i-1].ep
		}
		keyName := knownHostsName(ep.Host, ep.Port)
		step := func(name string, err error, detail string) Step {
			return Step{Name: name, OK: err == nil, Detail: detail, Err: err, Hop: ep, Prev: prev, KnownHostsName: keyName}
		}
		creds, err := loadCredentials(ctx, ep)
		if err != nil {
			var ag *AgentError
			if errors.As(err, &ag) {
				return fail(step("identity agent "+ep.IdentityAgent, err, err.Error()))
			}
			return fail(step("identity "+strings.Join(ep.Identities, ","), err, err.Error()))
		}
		defer creds.close()
		hk, err := newHostKeys(ep, t.log)
		if err != nil {
			return fail(step("known_hosts "+ep.KnownHosts, err, err.Error()))
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
			detail = fmt.Sprintf("direct-tcpip channel to %s through %s", ep.Addr(), prev)
			raw, err = dialThrough(ctx, chain[i-1], ep)
		}
		if err != nil {
			return fail(step(name, err, err.Error()))
		}
		report(step(name, nil, detail))

		h, err := handshake(ctx, raw, ep, creds, hk)
		mu.Lock()
		seen := offered
		mu.Unlock()
		offeredKeys := strings.Join(creds.labels, ", ")
		var (
			hke *HostKeyError
			ae  *AuthError
		)
		switch {
		case errors.As(err, &hke):
			return fail(step("host key "+ep.String(), err, hke.Error()))
		case seen == nil:
			if err == nil { // cannot happen with x/crypto: no login without a host key
				closeAndWait([]*hop{h}, &sync.WaitGroup{})
				err = &HandshakeError{Hop: ep.String(), Err: errors.New("the server offered no host key")}
			}
			return fail(step("SSH handshake "+ep.String(), err, err.Error()))
		}
		report(step("host key "+ep.String(), nil,
			fmt.Sprintf("%s %s matches %s under the name %s", seen.Type(), ssh.FingerprintSHA256(seen), ep.KnownHosts, keyName)))
		switch {
		case errors.As(err, &ae):
			detail := fmt.Sprintf("%s refused %s for user %s", ep.Addr(), offeredKeys, ep.User)
			for _, n := range ae.Notes {
				detail += "; " + n
			}
			return fail(step("auth "+ep.String(), err, detail))
		case err != nil:
			return fail(step("auth "+ep.String(), err, err.Error()))
		}
		accepted := offeredKeys
		if len(creds.labels) > 1 {
			accepted = "one of " + offeredKeys
		}
		report(step("auth "+ep.String(), nil, fmt.Sprintf("%s accepted for user %s", accepted, ep.User)))
		chain = append(chain, h)
		// Every global request (hostkeys-00 after login, ClientAlive)
		// gets a "no" and every channel a refusal; the loop ends when the
		// connection closes.
		wg.Add(1)
		go func() {
			defer wg.Done()
			discardIncoming(h)
		}()
	}
	return chain
}

// probeForwards requests each forward on the server and cancels it at once.
func (t *Tunnel) probeForwards(ctx context.Context, server *hop, report func(Step)) {
	abort := func() { server.conn.Close() }
	timeout := server.ep.ConnectTimeout
	for _, f := range t.cfg.Forwards {
		name := "forward " + f.Remote()
		step := func(err error, detail string) Step {
			return Step{Name: name, OK: err == nil, Detail: detail, Err: err, Hop: server.ep, Forward: &f}
		}
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
			err := &TimeoutError{Step: st.requestType() + " " + f.Remote(), Hop: server.ep.String(), After: timeout}
			report(step(err, fmt.Sprintf("%s did not answer the %s request within %s", server.ep, st.requestType(), timeout)))
			return
		case err != nil:
			err := &ClosedError{Hop: server.ep.String(), Err: err}
			report(step(err, err.Error()))
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
			report(step(nil, detail))
			if ctimedOut || cerr != nil {
				return
			}
			continue
		}
		refused := &ForwardRefusedError{Forward: f.Remote(), Server: server.ep.String()}
		if f.RemotePath != "" {
			report(step(&ForwardProbeError{Refused: refused, Socket: true},
				fmt.Sprintf("%s refused streamlocal-forward %s", server.ep, f.RemotePath)))
			continue
		}
		detail, perr := t.refusedStep(ctx, server, refused)
		report(step(perr, detail))
	}
}

// probeLocalForwards checks each local forward as a session would use it:
// its address can be bound here (then released), and the server opens a
// channel to its target (then closed). wg counts the goroutines that drain
// each channel's requests until the server confirms the close.
func (t *Tunnel) probeLocalForwards(ctx context.Context, server *hop, wg *sync.WaitGroup, report func(Step)) {
	for _, lf := range t.cfg.LocalForwards {
		name := "local forward listen " + lf.Listen
		ln, err := net.Listen(network(lf.Listen), lf.Listen)
		if err != nil {
			report(Step{Name: name, Detail: err.Error(), Err: &LocalForwardError{Listen: lf.Listen, Err: err}})
		} else {
			ln.Close()
			report(Step{Name: name, OK: true, Detail: "can be bound here (bound, then released)"})
		}
		if server == nil {
			continue
		}
		l := &localState{lf: lf}
		typ, payload := l.openPayload(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		name = "local forward connect " + lf.Connect
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
			err := &LocalForwardError{Listen: lf.Listen, Connect: lf.Connect, Server: server.ep.String(),
				Err: &TimeoutError{Step: "opening " + typ, Hop: server.ep.String(), After: server.ep.ConnectTimeout}}
			report(Step{Name: name, Detail: fmt.Sprintf("%s did not open the channel within connect_timeout", server.ep), Err: err, Hop: server.ep})
			return
		case openErr != nil:
			err := &LocalForwardError{Listen: lf.Listen, Connect: lf.Connect, Server: server.ep.String(), Err: openErr}
			report(Step{Name: name, Detail: openErr.Error(), Err: err, Hop: server.ep})
		default:
			report(Step{Name: name, OK: true, Detail: fmt.Sprintf("%s opened %s to it (opened, then closed)", server.ep, typ), Hop: server.ep})
		}
	}
}

// refusedStep finds out why the server refused a TCP forward. sshd's
// refusal carries no reason, so it opens a direct-tcpip channel to the
// blocking address 255.255.255.255:9 that the guide's lines permit:
// refused as "administratively prohibited" means port forwarding is off
// for this key (restrict without port-forwarding, so permitlisten is
// ignored); a failed connect means forwarding is on and the port itself
// was refused.
func (t *Tunnel) refusedStep(ctx context.Context, server *hop, refused *ForwardRefusedError) (string, *ForwardProbeError) {
	perr := &ForwardProbeError{Refused: refused}
	detail := fmt.Sprintf("%s refused tcpip-forward %s", server.ep, refused.Forward)
	var derr error
	_, timedOut := bounded(ctx, server.ep.ConnectTimeout, func() { server.conn.Close() }, func() error {
		c, err := openDirect(server.client, "255.255.255.255:9")
		if c != nil {
			c.Close()
		}
		derr = err
		return err
	})
	switch {
	case !timedOut && derr != nil && strings.Contains(derr.Error(), "administratively prohibited"):
		perr.ForwardingOff = true
		detail += "; a direct-tcpip open of 255.255.255.255:9 was refused too: port forwarding is off for this key"
	case !timedOut && derr != nil:
		detail += "; port forwarding itself is on for this key"
	default:
		perr.Inconclusive = true
	}
	return detail, perr
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
			detail := "local target refused: " + err.Error()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				detail = "local target does not answer: " + err.Error()
			}
			report(Step{Name: name, Detail: detail, Err: &LocalTargetError{Addr: f.Local, Err: err}, Forward: &f})
			continue
		}
		c.Close()
		kind := "TCP connections"
		if network(f.Local) == "unix" {
			kind = "connections on the socket"
		}
		report(Step{Name: name, OK: true, Detail: "accepts " + kind + " (forward " + f.String() + ")", Forward: &f})
	}
}
