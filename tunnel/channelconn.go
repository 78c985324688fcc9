package tunnel

import (
	"errors"
	"net"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

// A jump host's direct-tcpip channel to the next hop, as the net.Conn the
// next hop's handshake runs over. x/crypto's Client.Dial returns the same,
// but an ssh.Client keeps one more goroutine per connection for good
// (NewClient's, waiting to close its forward listeners), and its Dial
// leaves one more per channel to discard the channel's requests; the
// session serves those requests on the next hop's own goroutine instead
// (incoming.go).

// errNoDeadline: an SSH channel has no deadlines (golang/go#65930); rtunnel
// bounds its waits by closing the connection instead.
var errNoDeadline = errors.New("an SSH channel has no deadlines")

// channelConn is an open direct-tcpip channel. Its addresses are 0.0.0.0:0
// as x/crypto reports them: the next hop is known by the name the user
// wrote, not by an address.
type channelConn struct {
	ssh.Channel
	reqs <-chan *ssh.Request // the channel's requests; the next hop's session answers them
}

var unknownAddr = &net.TCPAddr{IP: net.IPv4zero}

func (*channelConn) LocalAddr() net.Addr              { return unknownAddr }
func (*channelConn) RemoteAddr() net.Addr             { return unknownAddr }
func (*channelConn) SetDeadline(time.Time) error      { return errNoDeadline }
func (*channelConn) SetReadDeadline(time.Time) error  { return errNoDeadline }
func (*channelConn) SetWriteDeadline(time.Time) error { return errNoDeadline }

// openDirect opens a direct-tcpip channel through conn to addr (host:port),
// sending the host exactly as written (what permitopen="localhost:N"
// matches), from 0.0.0.0:0 as ssh -J and x/crypto do.
func openDirect(conn ssh.Conn, addr string) (*channelConn, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, err
	}
	ch, reqs, err := conn.OpenChannel("direct-tcpip", ssh.Marshal(&directTCPIPPayload{Host: host, Port: uint32(port), OriginAddr: "0.0.0.0"}))
	if err != nil {
		return nil, err
	}
	return &channelConn{Channel: ch, reqs: reqs}, nil
}
