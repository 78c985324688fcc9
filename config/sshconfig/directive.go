package sshconfig

import (
	"fmt"
	"strconv"
	"strings"
)

// directive applies one keyword line. active says the line is in a block
// that applies; values are checked either way, as ssh does.
func (r *resolver) directive(kw string, args []string, src Source, active bool) error {
	h := r.h
	fail := func(format string, a ...any) error {
		return &Error{File: src.File, Line: src.Line, Msg: fmt.Sprintf(format, a...)}
	}
	// first reports whether this line sets kw: OpenSSH keeps the first value.
	first := func() bool {
		if _, done := h.Set[kw]; done || !active {
			return false
		}
		h.Set[kw] = src
		return true
	}
	one := func() (string, error) {
		if len(args) != 1 {
			return "", fail("%s takes one value, got %d: %s", kw, len(args), strings.Join(args, " "))
		}
		return args[0], nil
	}
	switch kw {
	case "hostname":
		v, err := one()
		if err == nil && first() {
			r.hostName = v
		}
		return err
	case "port":
		v, err := one()
		if err != nil {
			return err
		}
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return fail("Port %q: want a number 1-65535", v)
		}
		if first() && h.opts.Port == 0 {
			h.Port = p
		}
	case "user":
		v, err := one()
		if err == nil && first() && h.opts.User == "" {
			h.User = v
		}
		return err
	case "identityfile", "certificatefile":
		v, err := one()
		if err != nil || !active {
			return err
		}
		if _, ok := h.Set[kw]; !ok {
			h.Set[kw] = src
		}
		if kw == "identityfile" {
			h.IdentityFiles = appendNew(h.IdentityFiles, v)
		} else {
			h.CertificateFiles = appendNew(h.CertificateFiles, v)
		}
	case "identityagent", "hostkeyalias":
		v, err := one()
		if err == nil && first() {
			if kw == "identityagent" {
				h.IdentityAgent = v
			} else {
				h.HostKeyAlias = v
			}
		}
		return err
	case "identitiesonly", "exitonforwardfailure", "clearallforwardings", "hashknownhosts":
		b, err := r.flag(args, fail)
		if err == nil && first() {
			switch kw {
			case "identitiesonly":
				h.IdentitiesOnly = b
			case "exitonforwardfailure":
				h.ExitOnForwardFailure = b
			case "hashknownhosts":
				h.HashKnownHosts = b
			default:
				r.clearForwards = b
			}
		}
		return err
	case "userknownhostsfile", "globalknownhostsfile":
		if first() {
			files := append([]string(nil), args...)
			if kw == "userknownhostsfile" {
				h.UserKnownHostsFiles = files
			} else {
				h.GlobalKnownHostsFiles = files
			}
		}
	case "stricthostkeychecking":
		v, err := one()
		if err != nil {
			return err
		}
		norm, ok := map[string]string{"yes": "true", "true": "true", "no": "false", "false": "false", "off": "false",
			"ask": "ask", "accept-new": "accept-new"}[strings.ToLower(v)]
		if !ok {
			return fail("StrictHostKeyChecking %q: want yes, accept-new, no or ask", v)
		}
		if first() {
			h.StrictHostKeyChecking = norm
		}
	case "serveraliveinterval", "connecttimeout":
		v, err := one()
		if err != nil {
			return err
		}
		secs, err := parseTime(v)
		if err != nil {
			return fail("%s %q: %v", kw, v, err)
		}
		if first() {
			if kw == "connecttimeout" {
				h.ConnectTimeout = secs
			} else {
				h.ServerAliveInterval = secs
			}
		}
	case "serveralivecountmax":
		v, err := one()
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fail("ServerAliveCountMax %q: want a whole number", v)
		}
		if first() {
			h.ServerAliveCountMax = n
		}
	case "remoteforward", "localforward":
		return r.forward(kw, args, src, active, fail)
	case "ciphers", "kexalgorithms", "macs", "hostkeyalgorithms":
		v, err := one()
		if err == nil && first() {
			*map[string]*string{"ciphers": &h.Ciphers, "kexalgorithms": &h.KexAlgorithms, "macs": &h.MACs,
				"hostkeyalgorithms": &h.HostKeyAlgorithms}[kw] = v
		}
		return err
	case "proxyjump":
		v, err := one()
		if err != nil {
			return err
		}
		if _, err := parseJumps(v); err != nil {
			return fail("ProxyJump %q: %v", v, err)
		}
		if active && !r.proxySet {
			r.proxySet, r.jumpSrc = true, src
			h.Set[kw] = src
			h.ProxyJump = v
		}
	case "proxycommand":
		if !active || r.proxySet {
			return nil
		}
		r.proxySet = true
		if strings.EqualFold(strings.Join(args, " "), "none") {
			return nil
		}
		return r.unsupported(src, "ProxyCommand", "it runs a command to carry the connection; rtunnel dials itself. For a jump host write ProxyJump (or jump: in rtunnel's config)")
	case "ignoreunknown":
		if first() {
			r.ignoreUnknown = strings.Join(args, ",")
		}
	default:
		return r.other(kw, args, src, active)
	}
	return nil
}

func (r *resolver) unsupported(src Source, directive, why string) error {
	return &Error{File: src.File, Line: src.Line, Unsupported: directive,
		Msg: directive + " is not supported: " + why}
}

// flag parses yes/no (and true/false), as ssh's flag options.
func (r *resolver) flag(args []string, fail func(string, ...any) error) (bool, error) {
	if len(args) != 1 {
		return false, fail("want yes or no, got %s", strings.Join(args, " "))
	}
	switch strings.ToLower(args[0]) {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fail("%q: want yes or no", args[0])
}

func (r *resolver) forward(kw string, args []string, src Source, active bool, fail func(string, ...any) error) error {
	remote := kw == "remoteforward"
	spec := args[0]
	switch {
	case len(args) == 2:
		spec += ":" + args[1]
	case len(args) > 2:
		return fail("%s takes a listen and a connect argument, got %d", kw, len(args))
	case !remote:
		return fail("LocalForward %s: missing the target (host:port)", args[0])
	}
	f, err := ParseForward(spec, remote)
	if err != nil {
		return fail("%s: %v", kw, err)
	}
	if !active {
		return nil
	}
	if f.Dynamic {
		return r.unsupported(src, "RemoteForward "+args[0], "with one argument it is a reverse SOCKS proxy; rtunnel forwards to one fixed target: write RemoteForward PORT HOST:PORT")
	}
	if _, ok := r.h.Set[kw]; !ok {
		r.h.Set[kw] = src
	}
	list := &r.h.LocalForwards
	if remote {
		list = &r.h.RemoteForwards
	}
	for _, old := range *list {
		old.Source = Source{} // ssh keeps the first of two equal lines
		if old == f {
			return nil
		}
	}
	f.Source = src
	*list = append(*list, f)
	return nil
}

func appendNew(list []string, v string) []string {
	for _, s := range list {
		if s == v {
			return list
		}
	}
	return append(list, v)
}

// parseTime is OpenSSH's convtime: a number of seconds, or a sum of
// number+unit (s, m, h, d, w), e.g. 1m30s.
func parseTime(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty time")
	}
	total, num := 0, -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if num < 0 {
				num = 0
			}
			num = num*10 + int(c-'0')
			if num > 1<<30 {
				return 0, fmt.Errorf("too large")
			}
			continue
		}
		mult, ok := map[byte]int{'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}[c|0x20]
		if !ok || num < 0 {
			return 0, fmt.Errorf("not a time: write seconds, or e.g. 1m30s")
		}
		total, num = total+num*mult, -1
	}
	if num >= 0 {
		total += num
	}
	return total, nil
}
