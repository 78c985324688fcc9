package sshconfig

import "fmt"

// Error is a problem at one line of an ssh_config file.
type Error struct {
	File string
	Line int // 0 when the problem is not at one line (an unreadable file)
	Msg  string
	// Unsupported names the directive when the file is valid for ssh but
	// asks for something rtunnel cannot honour (ProxyCommand, Match exec).
	Unsupported string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}
