package tunnel

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
)

// A hub past sshd's MaxStartups accepts a connection and closes it at once,
// before its SSH version line (Debian's sshd first writes "Exceeded
// MaxStartups"): the client sees EOF (or a reset, when our own version line
// was still unread) where the banner should be. That is a
// busy hub, not a broken one, and it is classified as such (BusyError) so
// that the retry is spread out instead of joining the next wave.

// bannerConn notes whether the server's version line ("SSH-...") began.
// x/crypto reads the version line byte by byte from this conn before it
// puts its own buffer in between, so the first line start is seen here.
type bannerConn struct {
	net.Conn
	seen  atomic.Bool
	spoke *atomic.Bool // set with seen, if not nil (for connectFirst)
	line  []byte       // the start of the current line, up to 4 bytes; Read only
}

func (b *bannerConn) Read(p []byte) (int, error) {
	n, err := b.Conn.Read(p)
	if !b.seen.Load() {
		for _, c := range p[:n] {
			if c == '\n' {
				b.line = b.line[:0]
				continue
			}
			if len(b.line) < 4 {
				b.line = append(b.line, c)
				if string(b.line) == "SSH-" {
					b.seen.Store(true)
					if b.spoke != nil {
						b.spoke.Store(true)
					}
					break
				}
			}
		}
	}
	return n, err
}

// closedBeforeBanner reports whether a failed handshake ended because the
// server closed the connection before its version line.
func closedBeforeBanner(b *bannerConn, err error) bool {
	return !b.seen.Load() && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}
