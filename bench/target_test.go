package bench

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The local target stands for the service behind the tunnel on the remote:
// an in-process TCP server on 127.0.0.1. Each connection starts with a
// one-byte op and its arguments:
//
//	'E' len:u32 data     echo len bytes back, then wait for the next op
//	'S' n:u64 data       sink n bytes, then answer with their digest
//	'G' n:u64            send n bytes of the pattern stream, then wait
//
// After an op the target reads the next op; EOF closes the connection.

const ioBuf = 256 << 10

// pattern is the stream every bulk transfer carries: a random block whose
// length is not a power of two (so packet boundaries never line up with it),
// repeated. Any offset has ioBuf contiguous bytes after it.
type pattern struct {
	period int
	buf    []byte

	mu     sync.Mutex
	digest map[string][]byte // verify+":"+n -> digest of the first n bytes
}

func newPattern() *pattern {
	p := &pattern{period: 1<<20 + 7, digest: map[string][]byte{}}
	p.buf = make([]byte, p.period+ioBuf)
	if _, err := rand.Read(p.buf[:p.period]); err != nil {
		panic(err)
	}
	copy(p.buf[p.period:], p.buf[:ioBuf])
	return p
}

// chunk is up to max bytes of the stream from offset off.
func (p *pattern) chunk(off int64, max int64) []byte {
	n := min(max, ioBuf)
	o := int(off % int64(p.period))
	return p.buf[o : o+int(n)]
}

// newHash is the digest used to check bulk transfers: sha256 in the smoke
// test; crc32c in the full bench, where hashing a GiB with sha256 in this
// process would take CPU from the clients being measured.
func newHash(verify string) hash.Hash {
	if verify == "sha256" {
		return sha256.New()
	}
	return crc32.New(crc32.MakeTable(crc32.Castagnoli))
}

// want returns the digest of the first n bytes of the stream.
func (p *pattern) want(verify string, n int64) []byte {
	key := fmt.Sprintf("%s:%d", verify, n)
	p.mu.Lock()
	defer p.mu.Unlock()
	if d, ok := p.digest[key]; ok {
		return d
	}
	h := newHash(verify)
	for off := int64(0); off < n; {
		c := p.chunk(off, n-off)
		h.Write(c)
		off += int64(len(c))
	}
	d := h.Sum(nil)
	p.digest[key] = d
	return d
}

// writeStream writes n bytes of the stream to w.
func (p *pattern) writeStream(w io.Writer, n int64) error {
	for off := int64(0); off < n; {
		c := p.chunk(off, n-off)
		if _, err := w.Write(c); err != nil {
			return err
		}
		off += int64(len(c))
	}
	return nil
}

// readStream reads exactly n bytes from r into a digest.
func readStream(r io.Reader, n int64, verify string) ([]byte, error) {
	h := newHash(verify)
	buf := make([]byte, ioBuf)
	for left := n; left > 0; {
		k, err := r.Read(buf[:min(left, int64(len(buf)))])
		h.Write(buf[:k])
		left -= int64(k)
		if err != nil && left > 0 {
			return nil, fmt.Errorf("after %d of %d bytes: %w", n-left, n, err)
		}
	}
	return h.Sum(nil), nil
}

type target struct {
	ln       net.Listener
	accepted atomic.Int64 // connections the target has accepted, ever
	pat      *pattern
	verify   string
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
}

func startTarget(t testing.TB, pat *pattern, verify string) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, pat: pat, verify: verify, conns: map[net.Conn]struct{}{}}
	tg.wg.Add(1)
	go tg.acceptLoop()
	t.Cleanup(tg.close)
	return tg
}

func (tg *target) addr() string { return tg.ln.Addr().String() }

func (tg *target) acceptLoop() {
	defer tg.wg.Done()
	for {
		c, err := tg.ln.Accept()
		if err != nil {
			return
		}
		tg.mu.Lock()
		if tg.closed {
			tg.mu.Unlock()
			c.Close()
			return
		}
		tg.conns[c] = struct{}{}
		tg.accepted.Add(1)
		tg.wg.Add(1)
		tg.mu.Unlock()
		go func() {
			defer tg.wg.Done()
			tg.serve(c)
			tg.mu.Lock()
			delete(tg.conns, c)
			tg.mu.Unlock()
			c.Close()
		}()
	}
}

func (tg *target) close() {
	tg.ln.Close()
	tg.mu.Lock()
	tg.closed = true
	for c := range tg.conns {
		c.Close()
	}
	tg.mu.Unlock()
	tg.wg.Wait()
}

func (tg *target) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [9]byte
	for {
		op, err := r.ReadByte()
		if err != nil {
			return
		}
		switch op {
		case 'E':
			if _, err := io.ReadFull(r, hdr[:4]); err != nil {
				return
			}
			n := int64(binary.BigEndian.Uint32(hdr[:4]))
			if _, err := io.CopyN(c, r, n); err != nil {
				return
			}
		case 'S':
			if _, err := io.ReadFull(r, hdr[:8]); err != nil {
				return
			}
			n := int64(binary.BigEndian.Uint64(hdr[:8]))
			d, err := readStream(r, n, tg.verify)
			if err != nil {
				return
			}
			if _, err := c.Write(d); err != nil {
				return
			}
		case 'G':
			if _, err := io.ReadFull(r, hdr[:8]); err != nil {
				return
			}
			if err := tg.pat.writeStream(c, int64(binary.BigEndian.Uint64(hdr[:8]))); err != nil {
				return
			}
		default:
			return
		}
	}
}

// Generator side: what a user on the hub does through the forwarded port.

var errMismatch = errors.New("bytes did not arrive intact")

func dialFwd(addr string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, timeout)
}

// echo sends msg with op 'E' on c and reads it back.
func echo(c net.Conn, msg, back []byte) error {
	req := make([]byte, 5+len(msg))
	req[0] = 'E'
	binary.BigEndian.PutUint32(req[1:], uint32(len(msg)))
	copy(req[5:], msg)
	if _, err := c.Write(req); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, back[:len(msg)]); err != nil {
		return err
	}
	for i := range msg {
		if msg[i] != back[i] {
			return errMismatch
		}
	}
	return nil
}

// sendSink sends n bytes of the stream (hub -> remote) and checks the
// target's digest.
func sendSink(c net.Conn, pat *pattern, n int64, verify string) error {
	var hdr [9]byte
	hdr[0] = 'S'
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	if _, err := c.Write(hdr[:]); err != nil {
		return err
	}
	if err := pat.writeStream(c, n); err != nil {
		return err
	}
	want := pat.want(verify, n)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("reading the digest: %w", err)
	}
	if string(got) != string(want) {
		return errMismatch
	}
	return nil
}

// readSource asks for n bytes of the stream (remote -> hub) and checks them.
func readSource(c net.Conn, pat *pattern, n int64, verify string) error {
	var hdr [9]byte
	hdr[0] = 'G'
	binary.BigEndian.PutUint64(hdr[1:], uint64(n))
	if _, err := c.Write(hdr[:]); err != nil {
		return err
	}
	got, err := readStream(c, n, verify)
	if err != nil {
		return err
	}
	if string(got) != string(pat.want(verify, n)) {
		return errMismatch
	}
	return nil
}
