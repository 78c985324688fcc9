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

// pipe copies both ways with half-close: EOF from one side is passed on as
// EOF (CloseWrite) and the other direction keeps flowing. An error on either
// side closes both.
func (s *session) pipe(pc *pipeConn, f *fwdState) {
	name := s.t.cfg.Name
	obs := s.t.obs
	done := pc.inDone
	go func() { // server -> local
		defer close(done)
		err := copyCounted(pc.local, pc.ch, func(n int) { obs.Bytes(name, f.label, "in", n) })
		if err != nil {
			pc.close()
			return
		}
		if cw, ok := pc.local.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	err := copyCounted(pc.ch, pc.local, func(n int) { obs.Bytes(name, f.label, "out", n) })
	if err != nil {
		pc.close()
	} else {
		_ = pc.ch.CloseWrite()
	}
	<-done
	pc.close()
}

// copyCounted copies until EOF (nil) or an error.
func copyCounted(dst io.Writer, src io.Reader, count func(int)) error {
	bp, pool := smallBufs.Get().(*[]byte), &smallBufs
	defer func() { pool.Put(bp) }()
	buf := *bp
	streamed := 0 // bytes moved by reads that filled the small buffer
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
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
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
