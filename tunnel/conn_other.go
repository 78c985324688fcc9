//go:build !linux

package tunnel

import "syscall"

// quickAck is a no-op where TCP_QUICKACK does not exist.
func quickAck(syscall.RawConn) {}
