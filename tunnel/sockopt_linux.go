package tunnel

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
	})
}

// lastAckAge is how long ago the kernel last took an ACK from the peer on tc
// (tcp_info's last_ack_recv); ok is false where it cannot tell.
func lastAckAge(tc *net.TCPConn) (time.Duration, bool) {
	info, ok := tcpInfo(tc)
	if !ok {
		return 0, false
	}
	return time.Duration(info.Last_ack_recv) * time.Millisecond, true
}

// ackState is how long ago the kernel last received an ACK on tc and how
// many segments of any kind it has received (tcp_info's last_ack_recv and
// segs_in).
func ackState(tc *net.TCPConn) (ackAge time.Duration, segsIn uint32, ok bool) {
	info, ok := tcpInfo(tc)
	if !ok {
		return 0, 0, false
	}
	return time.Duration(info.Last_ack_recv) * time.Millisecond, info.Segs_in, true
}

// lastDataAge is how long ago the kernel last received data from the peer
// on tc, read by us or not (tcp_info's last_data_recv).
func lastDataAge(tc *net.TCPConn) (time.Duration, bool) {
	info, ok := tcpInfo(tc)
	if !ok {
		return 0, false
	}
	return time.Duration(info.Last_data_recv) * time.Millisecond, true
}

func tcpInfo(tc *net.TCPConn) (info *unix.TCPInfo, ok bool) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, false
	}
	_ = raw.Control(func(fd uintptr) {
		var err error
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		ok = err == nil && tcpInfoFilled(info)
	})
	return info, ok
}

// tcpInfoFilled reports whether the kernel filled tcp_info far enough to
// be read. GetsockoptTCPInfo ignores the length the kernel returns, and
// qemu-user fills only the first 4 bytes: the rest then reads 0, so
// last_data_recv would claim data "just now" forever and hide a dead link.
// An established connection always has both MSS values set.
func tcpInfoFilled(info *unix.TCPInfo) bool {
	return info.Snd_mss != 0 && info.Rcv_mss != 0
}

// reuseAddr lets a poke bind the port of a connection that was just reset
// (poke.go).
var reuseAddr = func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
