package tunnel

import (
	"encoding/binary"
	"net"
	"syscall"
	"time"
	"unsafe"
)

const tcpUserTimeout = 0x12 // TCP_USER_TIMEOUT, linux/tcp.h

// tuneServerConn bounds unacknowledged writes at the kernel level, a
// backstop under the keepalive for a link that silently drops packets.
func tuneServerConn(c *net.TCPConn, deadAfter time.Duration) {
	if deadAfter <= 0 {
		return
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	ms := int(deadAfter/time.Millisecond) + 1000
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, ms)
	})
}

const (
	tcpInfo            = 11 // TCP_INFO, linux/tcp.h
	tcpiLastDataRecvAt = 52 // offsets of tcpi_last_data_recv and tcpi_last_ack_recv (ms) in struct tcp_info
	tcpiLastAckRecvAt  = 56
)

// lastAckAge is how long ago the kernel last took an ACK from the peer on tc
// (tcp_info's last_ack_recv); ok is false where it cannot tell.
func lastAckAge(tc *net.TCPConn) (time.Duration, bool) { return tcpInfoAge(tc, tcpiLastAckRecvAt) }

// lastDataAge is how long ago the kernel last received data from the peer
// on tc, read by us or not (tcp_info's last_data_recv).
func lastDataAge(tc *net.TCPConn) (time.Duration, bool) { return tcpInfoAge(tc, tcpiLastDataRecvAt) }

func tcpInfoAge(tc *net.TCPConn, offset int) (age time.Duration, ok bool) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info [232]byte // struct tcp_info only grows; the fields used are at the front
	_ = raw.Control(func(fd uintptr) {
		n := uint32(len(info))
		_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, tcpInfo,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == 0 && int(n) >= offset+4 {
			age = time.Duration(binary.NativeEndian.Uint32(info[offset:])) * time.Millisecond
			ok = true
		}
	})
	return age, ok
}

// reuseAddr lets a poke bind the port of a connection that was just reset
// (dial.go).
var reuseAddr = func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
