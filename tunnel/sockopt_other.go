//go:build !linux

package tunnel

import (
	"net"
	"syscall"
	"time"
)

func tuneServerConn(*net.TCPConn, time.Duration) {}

func lastAckAge(*net.TCPConn) (time.Duration, bool) { return 0, false }

func lastDataAge(*net.TCPConn) (time.Duration, bool) { return 0, false }

func ackState(*net.TCPConn) (time.Duration, uint32, bool) { return 0, 0, false }

// reuseAddr is nil: pokes are Linux-only.
var reuseAddr func(network, address string, c syscall.RawConn) error
