package tunnel

import (
	"io"
	"net"
	"sync"

	"golang.org/x/crypto/ssh"
)

// pipeConn is one forwarded connection: an SSH channel and a local socket.
type pipeConn struct {
	ch     ssh.Channel
	local  net.Conn
	inDone chan struct{} // closed when server -> local copying ended
}

func (p *pipeConn) close() {
	p.ch.Close()
	p.local.Close()
}

// Each direction of a connection starts with a small buffer, so that many
// idle or interactive connections cost little, and moves to a large one
// once it has streamed pipeBulkAfter in reads that filled the small one: a
// bulk transfer then makes one read and one write syscall per 256 KiB on
// the local socket instead of one per 8 KiB, while a short exchange (a
// request, a 64 KiB response) never takes a large buffer.
const (
	pipeSmallBuf  = 8 << 10
	pipeLargeBuf  = 256 << 10
	pipeBulkAfter = 256 << 10
)

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, pipeSmallBuf); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, pipeLargeBuf); return &b }}
)

// pipeEnd is what a forwarded connection moved and how it ended, for the
// debug log line at its close.
type pipeEnd struct {
	in, out int64 // bytes server -> local, local -> server

	mu  sync.Mutex
	how string // the first end wins: the other side then fails because of it
	err error
}

func (e *pipeEnd) set(how string, err error) {
	e.mu.Lock()
	if e.how == "" {
		e.how, e.err = how, err
	}
	e.mu.Unlock()
}

// pipe copies both ways with half-close: EOF from one side is passed on as
// EOF (CloseWrite) and the other direction keeps flowing. An error on either
// side closes both.
func (s *session) pipe(pc *pipeConn, label string) *pipeEnd {
	name := s.t.cfg.Name
	obs := s.t.obs
	end := &pipeEnd{}
	// failed records which side failed first, unless the session's end
	// (which closes every local socket) caused it.
	failed := func(side string, err error) {
		if s.isDead() {
			end.set("session ended", nil)
		} else {
			end.set(side+" error", err)
		}
		pc.close()
	}
	done := pc.inDone
	go func() { // server -> local
		defer close(done)
		rerr, werr := copyCounted(pc.local, pc.ch, func(n int) { end.in += int64(n); obs.Bytes(name, label, "in", n) })
		switch {
		case werr != nil:
			failed("local target", werr)
			return
		case rerr != nil:
			failed("channel", rerr)
			return
		}
		if cw, ok := pc.local.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	rerr, werr := copyCounted(pc.ch, pc.local, func(n int) { end.out += int64(n); obs.Bytes(name, label, "out", n) })
	switch {
	case rerr != nil:
		failed("local target", rerr)
	case werr != nil:
		failed("channel", werr)
	default:
		_ = pc.ch.CloseWrite()
	}
	<-done
	end.set("closed by both sides", nil)
	pc.close()
	return end
}

// copyCounted copies until EOF (both nil) or an error reading src or
// writing dst.
func copyCounted(dst io.Writer, src io.Reader, count func(int)) (readErr, writeErr error) {
	bp, pool := smallBufs.Get().(*[]byte), &smallBufs
	defer func() { pool.Put(bp) }()
	buf := *bp
	streamed := 0 // bytes moved by reads that filled the small buffer
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			count(n)
			if pool == &smallBufs && n == len(buf) {
				if streamed += n; streamed >= pipeBulkAfter {
					smallBufs.Put(bp)
					bp, pool = largeBufs.Get().(*[]byte), &largeBufs
					buf = *bp
				}
			}
		}
		if rerr == io.EOF {
			return nil, nil
		}
		if rerr != nil {
			return rerr, nil
		}
	}
}
