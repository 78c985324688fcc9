//go:build !linux

package tunnel

import (
	"net"
	"time"
)

func tuneServerConn(*net.TCPConn, time.Duration) {}
