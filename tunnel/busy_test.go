package tunnel

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// closingServer accepts every connection, lets serve do what it will with
// it, and closes it: a stand-in for sshd's listener past MaxStartups
// (tunnel tests run no sshd; e2e/busy_test.go drives a real one).
func closingServer(t *testing.T, serve func(c net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestClassifyBusyHub(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(c net.Conn)
		busy  bool
	}{
		// sshd past MaxStartups: accept, close. Our version line is
		// unread: the close is a reset.
		{"closed at once", func(net.Conn) {}, true},
		// The same after our version line arrived and was read: EOF.
		{"closed after reading ours", func(c net.Conn) {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 64)
			_, _ = c.Read(buf)
		}, true},
		// Debian's sshd says so first (e2e/busy_test.go saw it), as
		// OpenSSH 9.8's penalties do: a line that is not a version line.
		{"Exceeded MaxStartups", func(c net.Conn) { _, _ = c.Write([]byte("Exceeded MaxStartups\r\n")) }, true},
		// A server that spoke SSH and then hung up is not busy.
		{"closed after its banner", func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := closingServer(t, tc.serve)
			f := newClientFiles(t, nil)
			cfg := baseConfig(nil, f, &logs{}, "127.0.0.1:22")
			cfg.Server.Port = port
			writeFile(t, f.knownHosts, "[127.0.0.1]:"+strconv.Itoa(port)+" "+string(marshalKey(t)), 0o644)
			err := runOnce(t, cfg)
			if Busy(err) != tc.busy {
				t.Fatalf("Busy(%v) = %v, want %v", err, !tc.busy, tc.busy)
			}
			if !tc.busy {
				check(t, err, classified{result: ResultHandshake})
				return
			}
			check(t, err, classified{result: ResultBusy, busy: true, words: []string{"closed the connection before it spoke SSH", "MaxStartups"}})
		})
	}
}
