package tunnel

import (
	"fmt"

	"golang.org/x/crypto/ssh"
)

// What a hop's server starts on its own: global requests and channel
// opens, and requests on the jump host's channel that carries the hop. One
// goroutine per hop serves them all; for the last hop that is the goroutine
// that called Session. An ssh.Client would run three more per connection
// (its request and channel dispatchers, one in Wait) and the session used
// to run one per channel type and one more in Wait; each sat idle for the
// whole life of the session, in every tunnel of a process.
// Nothing here blocks on more than one packet write: a forwarded channel
// is handed to its own goroutine at once (golang/go#18439).

// refusedChannelTypes are the channel types a server may open on a client
// (RFC 4254, OpenSSH's agent forwarding) that rtunnel never serves; they
// are refused as prohibited and logged. Any other unknown type gets
// x/crypto's own "unknown channel type" refusal, unlogged: the name is the
// server's text.
var refusedChannelTypes = map[string]bool{
	"session":                true,
	"direct-tcpip":           true,
	"x11":                    true,
	"auth-agent@openssh.com": true,
}

// serveIncoming answers h's global requests, its channel opens and the
// requests on the jump channel carrying it until x/crypto closes the first
// two with the connection, then ends the session: a hop whose connection
// is gone takes the session with it.
func (s *session) serveIncoming(h *hop) {
	chans, reqs, carrier := h.chans, h.reqs, h.carrier
	for chans != nil || reqs != nil {
		select {
		case nc, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			s.channelOpened(h, nc)
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			s.globalRequest(h, r)
		case r, ok := <-carrier:
			if !ok {
				carrier = nil
				continue
			}
			refuseRequest(r)
		}
	}
	// x/crypto closes the channels just before it records why the
	// connection ended: Wait returns at once.
	err := h.client.Wait()
	s.kill(&ClosedError{Hop: h.ep.String(), Err: err})
	// kill closed the whole chain: the carrying channel, if any, closes
	// with it (a nil channel would block for good).
	if carrier != nil {
		for r := range carrier {
			refuseRequest(r)
		}
	}
}

// refuseRequest says no to a request that asks for an answer.
func refuseRequest(r *ssh.Request) {
	if r.WantReply {
		_ = r.Reply(false, nil)
	}
}

// channelOpened serves one channel the server opened. Only the last hop's
// forwarded-tcpip and forwarded-streamlocal channels, for forwards this
// session asked for, are ever accepted; on a jump host every channel is
// refused.
func (s *session) channelOpened(h *hop, nc ssh.NewChannel) {
	typ := nc.ChannelType()
	refused := refusedChannelTypes[typ]
	switch typ {
	case "forwarded-tcpip", "forwarded-streamlocal@openssh.com":
		refused = true // on a jump host
		if h != s.server {
			break
		}
		if typ == "forwarded-tcpip" {
			s.acceptForwarded(nc)
		} else {
			s.acceptStreamLocal(nc)
		}
		return
	}
	if !refused {
		_ = nc.Reject(ssh.UnknownChannelType, fmt.Sprintf("unknown channel type: %v", typ))
		return
	}
	// typ is one of six known names here: a bounded map key.
	_ = nc.Reject(ssh.Prohibited, "rtunnel accepts no "+typ+" channels")
	s.warnLimited("unwanted-channel:"+typ, "refused a channel the server opened: rtunnel only accepts forwarded-tcpip and forwarded-streamlocal for its own forwards",
		"hop", h.ep.String(), "type", typ)
}

// globalRequest answers one of the hop's global requests. Keepalives
// (sshd's ClientAlive: any reply counts) and OpenSSH's hostkeys-00 notice
// get a quiet "no"; anything else is refused and logged, at most once a
// minute (the type is the server's text, so it never becomes a map key).
func (s *session) globalRequest(h *hop, r *ssh.Request) {
	refuseRequest(r)
	switch r.Type {
	case "keepalive@openssh.com", "hostkeys-00@openssh.com":
		return
	}
	typ := r.Type
	if len(typ) > 64 {
		typ = typ[:64] + "..."
	}
	s.warnLimited("global-request", "refused a global request from the server: rtunnel serves none",
		"hop", h.ep.String(), "type", typ, "bytes", len(r.Payload))
}

// discardIncoming refuses every channel and request a hop's server starts
// until its connection closes: for a chain that carries no session (the
// probe), whose caller closes every hop.
func discardIncoming(h *hop) {
	chans, reqs, carrier := h.chans, h.reqs, h.carrier
	for chans != nil || reqs != nil || carrier != nil {
		select {
		case nc, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			_ = nc.Reject(ssh.Prohibited, "rtunnel is only probing")
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			refuseRequest(r)
		case r, ok := <-carrier:
			if !ok {
				carrier = nil
				continue
			}
			refuseRequest(r)
		}
	}
}
