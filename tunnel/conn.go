package tunnel

import (
	"bufio"
	"net"
	"syscall"
)

// serverReadBuf is how much one read syscall may take from an SSH server's
// socket. x/crypto/ssh reads through a 4 KiB bufio.Reader, which costs a
// read syscall for every 4 KiB (two per 32 KiB data packet, more at
// packet boundaries); a bulk transfer spent most of its CPU there.
const serverReadBuf = 256 << 10

// quickAckBelow: a read smaller than this re-arms TCP_QUICKACK. Small reads
// are the request/response exchanges that delayed ACKs stall; a bulk
// stream is acknowledged every other segment anyway and would only pay a
// setsockopt per read.
const quickAckBelow = 8 << 10

// serverConn is the TCP connection to an SSH server as x/crypto/ssh sees
// it: reads come from a large buffer, and a small read re-arms
// TCP_QUICKACK (see quickAck). Writes pass through: x/crypto flushes each
// packet itself.
type serverConn struct {
	net.Conn
	r *bufio.Reader
}

// newServerConn wraps c if it is a real socket; a channel of a jump host
// (already in memory) is returned as it is.
func newServerConn(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &serverConn{Conn: c, r: bufio.NewReaderSize(&ackingReader{Conn: c, raw: raw}, serverReadBuf)}
}

// Read is called by x/crypto's single reading goroutine only.
func (s *serverConn) Read(p []byte) (int, error) { return s.r.Read(p) }

// ackingReader re-arms TCP_QUICKACK after a small read from the socket.
type ackingReader struct {
	net.Conn
	raw syscall.RawConn
}

func (a *ackingReader) Read(p []byte) (int, error) {
	n, err := a.Conn.Read(p)
	if n > 0 && n < quickAckBelow {
		quickAck(a.raw)
	}
	return n, err
}
