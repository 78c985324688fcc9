package tunnel

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// bulkReadBuf is how much one read syscall may take from an SSH server's
// socket while data streams in. x/crypto/ssh reads through a 4 KiB
// bufio.Reader, which costs a read syscall for every 4 KiB (two per 32 KiB
// data packet, more at packet boundaries); a bulk transfer spent most of
// its CPU there.
const bulkReadBuf = 256 << 10

// bulkAbove: a socket read that fills the caller's buffer of at least this
// size means more is waiting, so the next read borrows a bulk buffer.
const bulkAbove = 4 << 10

// bulkLinger: the bulk buffer goes back to the pool once drained after a
// small read that comes this long after the last large one. Small reads
// in the middle of a stream (the reader overtook the sender) keep it:
// giving it back there cost an extra read at every such turn. An idle
// tunnel gives it back at the first packet after the stream, at the
// latest the reply to the next keepalive.
const bulkLinger = time.Second

// quickAckBelow: a read smaller than this re-arms TCP_QUICKACK. Small reads
// are the request/response exchanges that delayed ACKs stall; a bulk
// stream is acknowledged every other segment anyway and would only pay a
// setsockopt per read.
const quickAckBelow = 8 << 10

// bulkBufs holds bulk read buffers between transfers. An idle connection
// holds none: its reader sits in a read into x/crypto's own 4 KiB buffer,
// so N idle tunnels do not cost N x 256 KiB (they did, allocated for good).
var bulkBufs = sync.Pool{New: func() any {
	b := make([]byte, bulkReadBuf)
	return &b
}}

// serverConn is the TCP connection to an SSH server as x/crypto/ssh sees
// it: while data streams in, reads come from a large borrowed buffer, and
// a small read re-arms TCP_QUICKACK (see quickAck). Writes pass through:
// x/crypto flushes each packet itself.
type serverConn struct {
	net.Conn
	raw syscall.RawConn

	bulk     *[]byte   // borrowed from bulkBufs while a transfer lasts, else nil
	r, w     int       // the unread bytes are (*bulk)[r:w]
	keep     bool      // keep bulk once drained: the stream goes on
	lastBulk time.Time // the last large read
	linger   time.Duration
	deferred error // the socket's error, returned once bulk is drained
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
	return &serverConn{Conn: c, raw: raw, linger: bulkLinger}
}

// Read is called by x/crypto's single reading goroutine only.
func (s *serverConn) Read(p []byte) (int, error) {
	if s.r == s.w {
		if s.deferred != nil {
			err := s.deferred
			s.deferred = nil
			if s.bulk != nil {
				s.giveBack()
			}
			return 0, err
		}
		if s.bulk == nil {
			n, err := s.readSocket(p)
			if n == len(p) && n >= bulkAbove {
				s.bulk = bulkBufs.Get().(*[]byte)
				s.lastBulk = time.Now()
			}
			return n, err
		}
		n, err := s.readSocket(*s.bulk)
		s.r, s.w = 0, n
		if n >= bulkAbove {
			s.lastBulk = time.Now()
			s.keep = true
		} else {
			s.keep = time.Since(s.lastBulk) < s.linger
		}
		if n == 0 {
			s.giveBack()
			return 0, err
		}
		s.deferred = err
	}
	n := copy(p, (*s.bulk)[s.r:s.w])
	s.r += n
	if s.r == s.w && !s.keep {
		s.giveBack()
	}
	return n, nil
}

// giveBack returns the drained bulk buffer to the pool.
func (s *serverConn) giveBack() {
	bulkBufs.Put(s.bulk)
	s.bulk = nil
	s.r, s.w = 0, 0
}

// readSocket is one read syscall; a small one re-arms TCP_QUICKACK.
func (s *serverConn) readSocket(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if n > 0 && n < quickAckBelow {
		quickAck(s.raw)
	}
	return n, err
}
