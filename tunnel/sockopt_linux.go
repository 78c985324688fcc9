package tunnel

import (
	"net"
	"syscall"
	"time"
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
