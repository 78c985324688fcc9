package tunnel

import "syscall"

// quickAck asks the kernel to acknowledge what it receives at once rather
// than delaying the ACK by up to 40 ms. sshd does not set TCP_NODELAY on a
// session without a tty, so its Nagle holds a small packet (a channel open,
// an EOF, a close) until the previous one is acknowledged: with our delayed
// ACK, back-to-back small exchanges stalled 40 ms each (OpenSSH's own ssh
// -R stalls on every one). Linux drops back to delayed ACKs by itself, so
// the flag is set again after each small read.
func quickAck(raw syscall.RawConn) {
	_ = raw.Control(setQuickAck)
}

func setQuickAck(fd uintptr) {
	_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
}
