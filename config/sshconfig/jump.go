package sshconfig

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// jumpHop is one ProxyJump element: [user@]host[:port] or
// ssh://[user@]host[:port].
type jumpHop struct {
	user, host string
	port       int
}

func (j jumpHop) String() string {
	s := j.host
	if strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	if j.user != "" {
		s = j.user + "@" + s
	}
	if j.port != 0 {
		s += ":" + strconv.Itoa(j.port)
	}
	return s
}

// parseJumps parses a ProxyJump value ("none" gives no hops).
func parseJumps(spec string) ([]jumpHop, error) {
	if strings.EqualFold(spec, "none") {
		return nil, nil
	}
	var hops []jumpHop
	for _, part := range strings.Split(spec, ",") {
		hop, err := parseJumpHop(part)
		if err != nil {
			return nil, err
		}
		hops = append(hops, hop)
	}
	return hops, nil
}

func parseJumpHop(s string) (jumpHop, error) {
	var j jumpHop
	if strings.HasPrefix(s, "ssh://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.Path != "" && u.Path != "/" {
			return j, fmt.Errorf("%q is not ssh://[user@]host[:port]", s)
		}
		j.user, j.host = u.User.Username(), u.Hostname()
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return j, fmt.Errorf("%q: bad port", s)
			}
			j.port = n
		}
		return j, nil
	}
	rest := s
	if at := strings.LastIndex(s, "@"); at >= 0 {
		j.user, rest = s[:at], s[at+1:]
		if j.user == "" {
			return j, fmt.Errorf("%q has an empty user", s)
		}
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") || strings.Count(rest, ":") == 1 {
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
				h, p, err = rest[1:len(rest)-1], "", nil
			} else {
				return j, fmt.Errorf("%q is not [user@]host[:port]", s)
			}
		}
		host, port = h, p
	}
	if host == "" {
		return j, fmt.Errorf("%q has no host", s)
	}
	j.host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return j, fmt.Errorf("%q: port %q is not 1-65535", s, port)
		}
		j.port = n
	}
	return j, nil
}

// resolveJumps resolves a ProxyJump chain as ssh runs it: the last hop is
// `ssh -J <the others> [-l user] [-p port] host`, so its own ProxyJump is
// overridden; the first hop is plain `ssh host` and its own ProxyJump, if
// any, is followed. The result is in dial order.
func resolveJumps(path, spec string, opts Options, chain int) ([]*Host, error) {
	hops, err := parseJumps(spec)
	if err != nil || len(hops) == 0 {
		return nil, err
	}
	last := hops[len(hops)-1]
	var preset *string
	if len(hops) > 1 {
		i := strings.LastIndex(spec, ",")
		rest := spec[:i]
		preset = &rest
	}
	o := opts
	o.User, o.Port = last.user, last.port
	h, err := resolve(path, last.host, o, preset, chain+1)
	if err != nil {
		return nil, err
	}
	h.JumpUser, h.JumpPort = last.user, last.port
	return append(h.Jumps, h), nil
}

// jumpString writes a ProxyJump value as ssh -G prints it: the hops before
// the last as written, the last one rewritten.
func jumpString(spec string) string {
	hops, err := parseJumps(spec)
	if err != nil || len(hops) == 0 {
		return spec
	}
	last := hops[len(hops)-1].String()
	if i := strings.LastIndex(spec, ","); i >= 0 {
		return spec[:i] + "," + last
	}
	return last
}
