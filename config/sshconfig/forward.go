package sshconfig

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Forward is one LocalForward/RemoteForward (or ssh -L/-R) as OpenSSH parses
// it. A side is either a path (a Unix socket) or a host and port; ListenHost
// is "" when no bind address was given, or an empty one (":2220:..."),
// which HasListenHost tells apart.
type Forward struct {
	ListenHost    string
	HasListenHost bool
	ListenPort    int // 0 for RemoteForward: the server picks
	ListenPath    string
	ConnectHost   string
	ConnectPort   int
	ConnectPath   string
	Dynamic       bool // a SOCKS forward: no connect side

	Source Source // the RemoteForward/LocalForward line; zero for ssh -R/-L
}

// String writes the forward as ssh -G prints it.
func (f Forward) String() string {
	var b strings.Builder
	switch {
	case f.ListenPath != "":
		b.WriteString(f.ListenPath)
	case !f.HasListenHost:
		b.WriteString(strconv.Itoa(f.ListenPort))
	default:
		fmt.Fprintf(&b, "[%s]:%d", f.ListenHost, f.ListenPort)
	}
	if f.Dynamic {
		return b.String()
	}
	if f.ConnectPath != "" {
		b.WriteString(" " + f.ConnectPath)
	} else {
		fmt.Fprintf(&b, " [%s]:%d", f.ConnectHost, f.ConnectPort)
	}
	return b.String()
}

type fwdField struct {
	arg    string
	isPath bool
}

// nextFwdField is OpenSSH's parse_fwd_field: a [bracketed] field is taken
// literally, a backslash escapes, '/' makes a path, ':' ends the field.
func nextFwdField(s string) (f fwdField, rest string, ok bool) {
	if s == "" {
		return f, "", false
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || end+1 < len(s) && s[end+1] != ':' {
			return f, "", false
		}
		f = fwdField{arg: s[1:end], isPath: strings.Contains(s[1:end], "/")}
		rest = s[end+1:]
		return f, strings.TrimPrefix(rest, ":"), true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return f, "", false
			}
			i++
			b.WriteByte(s[i])
			if s[i] == '/' {
				f.isPath = true
			}
			continue
		case '/':
			f.isPath = true
		case ':':
			f.arg = b.String()
			return f, s[i+1:], true
		}
		b.WriteByte(s[i])
	}
	f.arg = b.String()
	return f, "", true
}

// ParseForward parses a forward spec as OpenSSH's parse_forward does:
// [bind:]port:host:hostport, with Unix socket paths on either side, or
// [bind:]port alone for a dynamic (SOCKS) forward. remote allows listen port 0.
func ParseForward(spec string, remote bool) (Forward, error) {
	s := strings.TrimLeft(spec, " \t")
	var fs []fwdField
	for len(fs) < 5 && s != "" {
		f, rest, ok := nextFwdField(s)
		if !ok {
			return Forward{}, fmt.Errorf("%q: unbalanced [ ] or a trailing \\", spec)
		}
		fs, s = append(fs, f), rest
	}
	if len(fs) > 4 {
		return Forward{}, fmt.Errorf("%q has too many ':' fields: want [bind:]port:host:hostport", spec)
	}
	var fw Forward
	var lport, cport string
	switch {
	case len(fs) == 1 && fs[0].isPath:
		fw.ListenPath, fw.Dynamic = fs[0].arg, true
	case len(fs) == 1:
		lport, fw.Dynamic = fs[0].arg, true
	case len(fs) == 2 && fs[0].isPath && fs[1].isPath:
		fw.ListenPath, fw.ConnectPath = fs[0].arg, fs[1].arg
	case len(fs) == 2 && fs[1].isPath:
		lport, fw.ConnectPath = fs[0].arg, fs[1].arg
	case len(fs) == 2:
		fw.ListenHost, fw.HasListenHost, lport, fw.Dynamic = fs[0].arg, true, fs[1].arg, true
	case len(fs) == 3 && fs[0].isPath:
		fw.ListenPath, fw.ConnectHost, cport = fs[0].arg, fs[1].arg, fs[2].arg
	case len(fs) == 3 && fs[2].isPath:
		fw.ListenHost, fw.HasListenHost, lport, fw.ConnectPath = fs[0].arg, true, fs[1].arg, fs[2].arg
	case len(fs) == 3:
		lport, fw.ConnectHost, cport = fs[0].arg, fs[1].arg, fs[2].arg
	case len(fs) == 4:
		fw.ListenHost, fw.HasListenHost, lport, fw.ConnectHost, cport = fs[0].arg, true, fs[1].arg, fs[2].arg, fs[3].arg
	default:
		return Forward{}, fmt.Errorf("%q is empty: want [bind:]port:host:hostport", spec)
	}
	var err error
	if fw.ListenPath == "" {
		if fw.ListenPort, err = forwardPort(lport, remote); err != nil {
			return Forward{}, fmt.Errorf("%q: listen %w", spec, err)
		}
	}
	if !fw.Dynamic && fw.ConnectPath == "" {
		if fw.ConnectPort, err = forwardPort(cport, false); err != nil {
			return Forward{}, fmt.Errorf("%q: connect %w", spec, err)
		}
		if fw.ConnectHost == "" {
			return Forward{}, fmt.Errorf("%q has no host to connect to", spec)
		}
	}
	return fw, nil
}

var errPortZero = errors.New("port 0 is only for a remote forward (the server picks)")

// forwardPort is a port number, or a service name as OpenSSH's a2port allows.
func forwardPort(s string, allowZero bool) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil {
		if p, err = net.LookupPort("tcp", s); err != nil {
			return 0, fmt.Errorf("port %q is not a number", s)
		}
	}
	if p == 0 && !allowZero {
		return 0, errPortZero
	}
	if p < 0 || p > 65535 {
		return 0, fmt.Errorf("port %d is out of range 0-65535", p)
	}
	return p, nil
}
