package sshconfig

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// Token sets, as OpenSSH allows them per directive.
const (
	tokensHostName = "%h"
	tokensPath     = "%C%d%h%i%k%L%l%n%p%r%u" // IdentityFile, CertificateFile, UserKnownHostsFile, IdentityAgent, socket paths
)

// expandTilde replaces a leading ~ or ~user as OpenSSH's tilde_expand does.
func (o *Options) expandTilde(s string) (string, error) {
	if !strings.HasPrefix(s, "~") {
		return s, nil
	}
	name, rest, _ := strings.Cut(s[1:], "/")
	home := o.Home
	if name != "" {
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("%q: no such user %q for ~%s", s, name, name)
		}
		home = u.HomeDir
	}
	if rest == "" && !strings.Contains(s, "/") {
		return home, nil
	}
	return strings.TrimRight(home, "/") + "/" + rest, nil
}

// expandTokens replaces %-tokens of the allowed set in s for host h; any
// other token is an error, as in OpenSSH.
func (h *Host) expandTokens(s, allowed string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("%q ends in a lone %%: write %%%% for a literal %%", s)
		}
		i++
		t := s[i]
		if t == '%' {
			b.WriteByte('%')
			continue
		}
		if !strings.Contains(allowed, "%"+string(t)) {
			return "", fmt.Errorf("%q: token %%%c is not allowed here (allowed: %s)", s, t, allowed)
		}
		b.WriteString(h.token(t))
	}
	return b.String(), nil
}

func (h *Host) token(t byte) string {
	switch t {
	case 'C':
		// OpenSSH's connection hash: SHA-1 of %l%h%p%r.
		sum := sha1.Sum([]byte(h.opts.LocalHost + h.HostName + strconv.Itoa(h.Port) + h.User))
		return hex.EncodeToString(sum[:])
	case 'd':
		return h.opts.Home
	case 'h':
		return h.HostName
	case 'i':
		return strconv.Itoa(h.opts.UID)
	case 'k':
		if h.HostKeyAlias != "" {
			return h.HostKeyAlias
		}
		return h.Alias
	case 'L':
		short, _, _ := strings.Cut(h.opts.LocalHost, ".")
		return short
	case 'l':
		return h.opts.LocalHost
	case 'n':
		return h.Alias
	case 'p':
		return strconv.Itoa(h.Port)
	case 'r':
		return h.User
	case 'u':
		return h.opts.LocalUser
	}
	return ""
}

// ExpandPath expands ~ and the path tokens in p (an IdentityFile or
// CertificateFile value as ssh -G prints it) for this host.
func (h *Host) ExpandPath(p string) (string, error) {
	p, err := h.opts.expandTilde(p)
	if err != nil {
		return "", err
	}
	return h.expandTokens(p, tokensPath)
}
