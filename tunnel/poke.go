package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
)

// A session that died silently (keepalive timeout) may still be alive on
// the server, holding its forwarded ports until the server's own timeout:
// sshd's ClientAlive takes longer than its interval x count_max on a dead
// link, and without it a hub only learns when one of its retransmissions
// meets the RST of our kernel, on a doubling timer. A SYN from the dead
// connection's own address and port settles it when the link is back: the
// server's kernel answers it with a challenge ACK (RFC 5961 4.2), ours
// answers that with a RST, the stale connection is gone and sshd frees its
// ports. The same holds after a reset the server did not send (a firewall
// rejecting on its behalf). So every first-hop attempt after such an end
// sends that SYN alongside ("poke"); it is never used as a connection. It
// goes to the address the dead connection had, never to a fresh DNS
// answer: only that server holds it. Config.DisableStalePoke turns it off
// (deploy/hub/HUB.md says what a hub's log shows of it).
type staleConn struct {
	local  *net.TCPAddr // our end of the dead connection
	remote *net.TCPAddr // the server's end, as connected: never a fresh DNS answer
	since  time.Time
}

// pokeFor: then the old port is forgotten.
const pokeFor = 2 * time.Minute

// notClosedByServer reports whether a session ended without the server
// closing it: silence (keepalive), or a reset that a middlebox may have
// sent on the server's behalf. The server may still hold it.
func notClosedByServer(err error) bool {
	var dead *LinkDeadError
	var closed *ClosedError
	return errors.As(err, &dead) || errors.As(err, &closed) && closed.Err != nil && !errors.Is(closed.Err, io.EOF)
}

func (t *Tunnel) staleConn() *staleConn {
	t.staleMu.Lock()
	defer t.staleMu.Unlock()
	if t.stale != nil && time.Since(t.stale.since) > pokeFor {
		t.stale = nil
	}
	return t.stale
}

func (t *Tunnel) setStale(s *staleConn) {
	t.staleMu.Lock()
	t.stale = s
	t.staleMu.Unlock()
}

// poke connects from the stale connection's address to the server's
// address of that connection until ctx ends. Its SYN is answered with a
// challenge ACK while the server holds the stale connection, and our kernel
// resets that connection whether the poke is still waiting or gone. A poke
// that connects proves the server holds nothing on that address: it is
// reset at once and the address forgotten.
func (t *Tunnel) poke(ctx context.Context) {
	st := t.staleConn()
	if st == nil || reuseAddr == nil {
		return
	}
	d := net.Dialer{LocalAddr: st.local, Control: reuseAddr, KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp", st.remote.String())
	if err != nil {
		return // ended unanswered (the link is still down), or the address is gone
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
	t.setStale(nil)
}
