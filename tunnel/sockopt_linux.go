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
	tcpInfo           = 11 // TCP_INFO, linux/tcp.h
	tcpiLastAckRecvAt = 56 // offset of tcpi_last_ack_recv (ms) in struct tcp_info
)

// lastAckAge is how long ago the kernel last took an ACK from the peer on tc
// (tcp_info's last_ack_recv); ok is false where it cannot tell.
func lastAckAge(tc *net.TCPConn) (age time.Duration, ok bool) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info [232]byte // struct tcp_info only grows; the fields used are at the front
	_ = raw.Control(func(fd uintptr) {
		n := uint32(len(info))
		_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, tcpInfo,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == 0 && n >= tcpiLastAckRecvAt+4 {
			age = time.Duration(binary.NativeEndian.Uint32(info[tcpiLastAckRecvAt:])) * time.Millisecond
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
