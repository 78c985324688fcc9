package sshconfig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// OpenSSH's limits: Include depth (READCONF_MAX_DEPTH) and, ours, the
// length of a ProxyJump chain (ssh has none and forks until it fails).
const (
	maxIncludeDepth = 16
	maxJumpChain    = 8
)

// Resolve reads the ssh_config at path and resolves alias as
// `ssh -G -F path alias` would, with its ProxyJump hops resolved too.
func Resolve(path, alias string, opts Options) (*Host, error) {
	return resolve(path, alias, opts, nil, 0)
}

// resolver holds one pass over the files for one alias.
type resolver struct {
	path      string
	h         *Host
	host      string // what Host lines match: the alias, the hostname in the final pass
	finalPass bool
	wantFinal bool

	hostName      string // HostName as written, tokens not yet expanded
	proxySet      bool   // ProxyJump or ProxyCommand took the one proxy slot
	jumpSrc       Source
	clearForwards bool
	ignoreUnknown string
}

// resolve resolves alias; presetJump, when not nil, is a ProxyJump given
// as ssh -J (how ssh runs a later hop of a chain), which wins over the file.
func resolve(path, alias string, opts Options, presetJump *string, chain int) (*Host, error) {
	if chain > maxJumpChain {
		return nil, &Error{File: path, Msg: fmt.Sprintf("ProxyJump for %s goes through more than %d hops: is there a loop (a hop whose own ProxyJump leads back)?", alias, maxJumpChain)}
	}
	h := &Host{Alias: alias, Set: map[string]Source{}, opts: opts, User: opts.User, Port: opts.Port}
	r := &resolver{path: path, h: h, host: alias}
	if presetJump != nil {
		h.ProxyJump, r.proxySet = *presetJump, true
	}
	active := true
	if err := r.readFile(path, 0, &active, false); err != nil {
		return nil, err
	}
	hn := alias
	if r.hostName != "" {
		hn = strings.ReplaceAll(r.hostName, "%%", "\x00")
		if i := strings.IndexByte(strings.ReplaceAll(hn, "%h", ""), '%'); i >= 0 {
			return nil, &Error{File: r.h.Set["hostname"].File, Line: r.h.Set["hostname"].Line,
				Msg: fmt.Sprintf("HostName %q: only %%h and %%%% are allowed", r.hostName)}
		}
		hn = strings.ReplaceAll(strings.ReplaceAll(hn, "%h", alias), "\x00", "%")
	}
	h.HostName = strings.ToLower(hn)
	if r.wantFinal {
		r.finalPass, r.host = true, h.HostName
		active = true
		if err := r.readFile(path, 0, &active, false); err != nil {
			return nil, err
		}
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	if h.ProxyJump != "" && h.ProxyJump != "none" {
		jumps, err := resolveJumps(path, h.ProxyJump, opts, chain)
		if err != nil {
			var e *Error
			if r.jumpSrc.File != "" && !errors.As(err, &e) {
				return nil, &Error{File: r.jumpSrc.File, Line: r.jumpSrc.Line, Msg: err.Error()}
			}
			return nil, err
		}
		h.Jumps = jumps
	}
	if h.ProxyJump == "none" {
		h.ProxyJump = ""
	}
	h.ProxyJump = jumpString(h.ProxyJump)
	return h, nil
}

// finish fills OpenSSH's defaults and expands what ssh -G shows expanded.
func (r *resolver) finish() error {
	h := r.h
	if h.Port == 0 {
		h.Port = 22
	}
	if h.User == "" {
		h.User = h.opts.LocalUser
	}
	if _, ok := h.Set["serveralivecountmax"]; !ok {
		h.ServerAliveCountMax = 3
	}
	if h.StrictHostKeyChecking == "" {
		h.StrictHostKeyChecking = "ask"
	}
	if h.UserKnownHostsFiles == nil {
		h.UserKnownHostsFiles = []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
	}
	if h.GlobalKnownHostsFiles == nil {
		h.GlobalKnownHostsFiles = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	for i, f := range h.UserKnownHostsFiles {
		p, err := h.ExpandPath(f)
		if err != nil {
			return r.errAt("userknownhostsfile", "UserKnownHostsFile %v", err)
		}
		h.UserKnownHostsFiles[i] = p
	}
	if a := h.IdentityAgent; a != "" && a != "none" && a != "SSH_AUTH_SOCK" && !strings.HasPrefix(a, "$") {
		p, err := h.ExpandPath(a)
		if err != nil {
			return r.errAt("identityagent", "IdentityAgent %v", err)
		}
		h.IdentityAgent = p
	}
	if r.clearForwards {
		h.RemoteForwards, h.LocalForwards = nil, nil
	}
	return nil
}

func (r *resolver) errAt(directive, format string, args ...any) error {
	src := r.h.Set[directive]
	return &Error{File: src.File, Line: src.Line, Msg: fmt.Sprintf(format, args...)}
}

// readFile reads one file (the config or an included one). active is the
// Host/Match state, shared with the including file as in OpenSSH; never
// marks a file included from an inactive block: nothing in it applies.
func (r *resolver) readFile(path string, depth int, active *bool, never bool) error {
	data, err := readConfigFile(path)
	if err != nil {
		return &Error{File: path, Msg: fmt.Sprintf("cannot read ssh_config: %v", err)}
	}
	for i, line := range strings.Split(string(data), "\n") {
		src := Source{File: path, Line: i + 1}
		kw, args, err := splitLine(line)
		if err != nil {
			return &Error{File: path, Line: src.Line, Msg: "unbalanced quotes"}
		}
		if kw == "" {
			continue
		}
		if len(args) == 0 {
			return &Error{File: path, Line: src.Line, Msg: fmt.Sprintf("no argument after keyword %q", kw)}
		}
		switch kw {
		case "host":
			*active = !never && matchHostLine(r.host, args)
		case "match":
			ok, err := r.match(args, src, never)
			if err != nil {
				return err
			}
			*active = !never && ok
		case "include":
			if err := r.include(args, src, depth, active, never); err != nil {
				return err
			}
		default:
			if err := r.directive(kw, args, src, *active); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxConfigSize bounds what one file may hold: a config is a few KiB, and a
// path naming a device (/dev/zero) must not eat the daemon's memory.
const maxConfigSize = 1 << 20

// readConfigFile reads a regular file (or /dev/null, as ssh -F /dev/null).
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, unwrapPath(err)
	}
	if path == os.DevNull {
		return nil, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("larger than %d KiB: is this an ssh_config?", maxConfigSize>>10)
	}
	return data, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// include reads the files an Include line names: relative names live in
// ~/.ssh (rtunnel reads its ssh_config as ssh reads -F, a user config), globs
// expand in sorted order, a pattern matching nothing is no error.
func (r *resolver) include(args []string, src Source, depth int, active *bool, never bool) error {
	if depth+1 > maxIncludeDepth {
		return &Error{File: src.File, Line: src.Line, Msg: fmt.Sprintf("Include nested more than %d deep: is a file including itself?", maxIncludeDepth)}
	}
	for _, a := range args {
		p := a
		if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "~") {
			p = "~/.ssh/" + p
		}
		p, err := r.h.opts.expandTilde(p)
		if err != nil {
			return &Error{File: src.File, Line: src.Line, Msg: "Include " + err.Error()}
		}
		files, err := filepath.Glob(p)
		if err != nil {
			return &Error{File: src.File, Line: src.Line, Msg: fmt.Sprintf("Include %q: %v", a, err)}
		}
		outer := *active
		for _, f := range files {
			if hiddenByGlob(p, f) {
				continue
			}
			if err := checkPerm(f); err != nil {
				return &Error{File: src.File, Line: src.Line, Msg: err.Error()}
			}
			err := r.readFile(f, depth+1, active, never || !outer)
			*active = outer // a Host or Match inside does not leak out
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// hiddenByGlob: glob(3), unlike filepath.Glob, does not let a wildcard
// match a leading '.' of a name.
func hiddenByGlob(pattern, file string) bool {
	pp, fp := strings.Split(pattern, "/"), strings.Split(file, "/")
	if len(pp) != len(fp) {
		return false
	}
	for i := range pp {
		if strings.HasPrefix(fp[i], ".") && !strings.HasPrefix(pp[i], ".") {
			return true
		}
	}
	return false
}

// checkPerm refuses an included file others may write, as ssh does.
func checkPerm(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("included file %s: %v", path, unwrapPath(err))
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm()&0o022 != 0 || ok && st.Uid != 0 && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("included file %s: bad owner or permissions (ssh refuses it too): it must belong to you or root and not be writable by group or others; chmod go-w %s", path, path)
	}
	return nil
}

// match evaluates a Match line as OpenSSH's match_cfg_line does.
func (r *resolver) match(args []string, src Source, never bool) (bool, error) {
	fail := func(format string, a ...any) (bool, error) {
		return false, &Error{File: src.File, Line: src.Line, Msg: "Match: " + fmt.Sprintf(format, a...)}
	}
	result, criteria, exec, passes := true, 0, false, 0
	for i := 0; i < len(args); i++ {
		attr := args[i]
		neg := strings.HasPrefix(attr, "!")
		attr = strings.ToLower(strings.TrimPrefix(attr, "!"))
		switch attr {
		case "all":
			if criteria > 0 || i+1 < len(args) {
				return fail("'all' cannot be combined with other attributes")
			}
			return result && !neg, nil
		case "canonical", "final":
			passes++
			if attr == "final" {
				r.wantFinal = true
			}
			// Canonicalization is refused, so only the final pass is "after" it.
			if r.finalPass == neg {
				result = false
			}
			continue
		}
		criteria++
		if i+1 == len(args) {
			return fail("%s needs an argument", attr)
		}
		i++
		arg := args[i]
		var ok bool
		switch attr {
		case "host":
			ok = matchList(r.matchHost(), arg, true)
		case "originalhost":
			ok = matchList(r.h.Alias, arg, true)
		case "user":
			ok = matchList(r.currentUser(), arg, false)
		case "localuser":
			ok = matchList(r.h.opts.LocalUser, arg, false)
		case "exec":
			exec = true
			continue
		default:
			return fail("%q is not supported (rtunnel knows host, originalhost, user, localuser, all, final, canonical)", args[i-1])
		}
		if ok == neg {
			result = false
		}
	}
	if criteria == 0 && passes == 0 {
		return fail("one or more attributes are needed")
	}
	if exec && result && !never {
		return false, &Error{File: src.File, Line: src.Line, Unsupported: "Match exec",
			Msg: "Match exec is not supported: it runs a command to decide which settings apply; rtunnel does not run commands from ssh_config. Use Match host/user, or write the values in rtunnel's config"}
	}
	return result, nil
}

// matchHost is the host a Match host line tests: HostName so far with %h
// for the alias, or the alias; in the final pass the hostname.
func (r *resolver) matchHost() string {
	if r.finalPass {
		return r.h.HostName
	}
	if r.hostName != "" {
		return strings.ReplaceAll(r.hostName, "%h", r.h.Alias)
	}
	return r.h.Alias
}

// currentUser is the remote user as far as known: -l, a User line read
// already, or the local user.
func (r *resolver) currentUser() string {
	if r.h.User != "" {
		return r.h.User
	}
	return r.h.opts.LocalUser
}
