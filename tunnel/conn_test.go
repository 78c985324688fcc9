package tunnel

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair is a connected TCP pair on 127.0.0.1, closed when the test ends.
func tcpPair(t *testing.T) (far net.Conn, near *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far = <-accepted
	if far == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { far.Close(); c.Close() })
	return far, c.(*net.TCPConn)
}

// loopbackPair is a connected TCP pair on 127.0.0.1: the far end writes,
// the near end is wrapped as rtunnel wraps a hub's socket.
func loopbackPair(t *testing.T) (far net.Conn, near *serverConn) {
	t.Helper()
	far, c := tcpPair(t)
	sc, ok := newServerConn(c).(*serverConn)
	if !ok {
		t.Fatal("a TCP socket was not wrapped")
	}
	return far, sc
}

// An idle connection holds no bulk buffer; a stream borrows one, delivers
// every byte in order through reads of x/crypto's sizes, keeps it over a
// small packet right after the stream, and gives it back at the first
// small packet once the stream has paused for longer than the linger.
func TestServerConnBorrowsBulkBufferOnlyWhileStreaming(t *testing.T) {
	far, sc := loopbackPair(t)
	small := []byte("keepalive-sized packet")
	if _, err := far.Write(small); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4096) // x/crypto's bufio.Reader reads 4 KiB at a time
	n, err := sc.Read(p)
	if err != nil || !bytes.Equal(p[:n], small) {
		t.Fatalf("small read: %q, %v", p[:n], err)
	}
	if sc.bulk != nil {
		t.Fatal("a small read borrowed a bulk buffer")
	}

	stream := make([]byte, 4<<20)
	for i := range stream {
		stream[i] = byte(i * 7)
	}
	go func() {
		_, _ = far.Write(stream)
	}()
	got := make([]byte, 0, len(stream))
	borrowed := false
	for len(got) < len(stream) {
		n, err := sc.Read(p)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, p[:n]...)
		borrowed = borrowed || sc.bulk != nil
	}
	if !bytes.Equal(got, stream) {
		t.Fatal("the stream arrived altered")
	}
	if !borrowed {
		t.Error("4 MiB streamed without a bulk buffer: one syscall per 4 KiB")
	}

	// A small packet within the linger: the stream may go on.
	sc.linger = time.Hour
	if _, err := far.Write(small); err != nil {
		t.Fatal(err)
	}
	n, err = sc.Read(p)
	if err != nil || !bytes.Equal(p[:n], small) {
		t.Fatalf("small read right after the stream: %q, %v", p[:n], err)
	}
	if sc.bulk == nil {
		t.Error("the bulk buffer went back at a small read right after the stream")
	}
	// A small packet after the linger: the buffer goes back once read.
	sc.linger = 0
	if _, err := far.Write(small); err != nil {
		t.Fatal(err)
	}
	n, err = sc.Read(p)
	if err != nil || !bytes.Equal(p[:n], small) {
		t.Fatalf("small read after the stream: %q, %v", p[:n], err)
	}
	if sc.bulk != nil {
		t.Error("the bulk buffer was kept after the stream had paused")
	}
}

// Bytes buffered before the server closed are delivered first; the close
// is reported after them, once.
func TestServerConnDeliversBufferedBytesBeforeEOF(t *testing.T) {
	far, sc := loopbackPair(t)
	first := bytes.Repeat([]byte{1}, 4096)
	if _, err := far.Write(first); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4096)
	if n, err := io.ReadFull(sc, p); n != len(p) || err != nil {
		t.Fatalf("first read: %d, %v", n, err)
	}
	if sc.bulk == nil {
		t.Fatal("a full 4 KiB read borrowed no bulk buffer")
	}
	tail := bytes.Repeat([]byte{2}, 10000)
	if _, err := far.Write(tail); err != nil {
		t.Fatal(err)
	}
	far.Close()
	_ = sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(sc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, tail) {
		t.Fatalf("got %d bytes before EOF, want the %d the server sent", len(got), len(tail))
	}
	if n, err := sc.Read(p); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read after EOF: %d, %v; want 0, EOF", n, err)
	}
	if sc.bulk != nil {
		t.Error("the bulk buffer outlived the connection's end")
	}
}

// countingConn counts the reads that reach the socket.
type countingConn struct {
	net.Conn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.Conn.Read(p)
}

// BenchmarkServerConnStream streams 32 KiB packets through a loopback
// socket and reads them as x/crypto does (a 4 KiB bufio.Reader, then the
// packet in one ReadFull), through the pooled reader and through the
// 256 KiB bufio.Reader it replaced; reads/MiB is the socket reads.
func BenchmarkServerConnStream(b *testing.B) {
	for _, kind := range []string{"pooled", "fixed-256KiB"} {
		b.Run(kind, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			const packet = 32 << 10
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, packet)
				for range b.N {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			counted := &countingConn{Conn: c}
			var src io.Reader
			if kind == "pooled" {
				raw, _ := c.(*net.TCPConn).SyscallConn()
				src = &serverConn{Conn: counted, raw: raw, linger: bulkLinger}
			} else {
				src = bufio.NewReaderSize(counted, bulkReadBuf)
			}
			r := bufio.NewReader(src)
			head := make([]byte, 5)
			body := make([]byte, packet-len(head))
			b.SetBytes(packet)
			b.ResetTimer()
			for range b.N {
				if _, err := io.ReadFull(r, head); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, body); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(counted.reads)/(float64(b.N)*packet/(1<<20)), "reads/MiB")
			<-done
		})
	}
}
