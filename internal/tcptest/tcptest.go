// Package tcptest is a TCP server for tests: it runs a handler on every
// connection and, in t.Cleanup, closes the listener and every open
// connection and waits for the handlers. Test-only; standard library only.
package tcptest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Server runs handle on each accepted connection until the test ends.
type Server struct {
	ln    net.Listener
	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	n     int
}

// Listen listens on addr ("" means 127.0.0.1:0) and serves.
func Listen(t testing.TB, addr string, handle func(i int, c net.Conn)) *Server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return Serve(t, ln, handle)
}

// Serve serves on ln; i counts connections from 1.
func Serve(t testing.TB, ln net.Listener, handle func(i int, c net.Conn)) *Server {
	t.Helper()
	s := &Server{ln: ln, done: make(chan struct{}), conns: map[net.Conn]bool{}}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.n++
			i := s.n
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(i, c)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// Close stops accepting, closes every open connection and waits for the
// handlers to return. It may be called more than once.
func (s *Server) Close() {
	s.ln.Close()
	<-s.done
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Open is how many connections are open now.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Accepted is how many connections were accepted so far.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Echo writes back what it reads.
func Echo(_ int, c net.Conn) { io.Copy(c, c) }
