package tunnel

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// AlgorithmKind names one of the lists OpenSSH lets a user set.
type AlgorithmKind string

// The lists, named as in rtunnel's config.
const (
	KindCiphers           AlgorithmKind = "ciphers"
	KindKexAlgorithms     AlgorithmKind = "kex_algorithms"
	KindMACs              AlgorithmKind = "macs"
	KindHostKeyAlgorithms AlgorithmKind = "host_key_algorithms"
)

// algorithmLists returns x/crypto's defaults and every name it implements
// (the defaults and the insecure ones) for kind.
func algorithmLists(kind AlgorithmKind) (defaults, known []string, err error) {
	sup, insecure := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	switch kind {
	case KindCiphers:
		defaults, known = sup.Ciphers, append(slices.Clone(sup.Ciphers), insecure.Ciphers...)
	case KindKexAlgorithms:
		defaults, known = sup.KeyExchanges, append(slices.Clone(sup.KeyExchanges), insecure.KeyExchanges...)
	case KindMACs:
		defaults, known = sup.MACs, append(slices.Clone(sup.MACs), insecure.MACs...)
	case KindHostKeyAlgorithms:
		defaults, known = sup.HostKeys, append(slices.Clone(sup.HostKeys), insecure.HostKeys...)
	default:
		return nil, nil, fmt.Errorf("unknown algorithm list %q", kind)
	}
	return defaults, known, nil
}

// ResolveAlgorithms applies an OpenSSH algorithm spec to x/crypto's lists:
// "a,b" is exactly those, "+a,b" appends to the defaults, "-a*,b" removes
// (wildcards allowed, as in OpenSSH), "^a,b" puts them first. A name
// x/crypto does not implement is an error listing the names it does.
func ResolveAlgorithms(kind AlgorithmKind, spec string) ([]string, error) {
	defaults, known, err := algorithmLists(kind)
	if err != nil {
		return nil, err
	}
	op := byte(0)
	if spec != "" && strings.ContainsAny(spec[:1], "+-^") {
		op, spec = spec[0], spec[1:]
	}
	names := strings.Split(spec, ",")
	for _, n := range names {
		if n == "" {
			return nil, fmt.Errorf("%s: empty name in the list (a stray comma?)", kind)
		}
		if op == '-' {
			continue // patterns; removing a name not there is no error
		}
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("%s: %q is not supported; supported: %s", kind, n, strings.Join(known, ","))
		}
	}
	var out []string
	switch op {
	case 0:
		out = names
	case '+':
		out = slices.Clone(defaults)
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	case '^':
		out = slices.Clone(names)
		for _, d := range defaults {
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	case '-':
		for _, d := range defaults {
			if !slices.ContainsFunc(names, func(p string) bool { ok, _ := path.Match(p, d); return ok }) {
				out = append(out, d)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: the list is empty after removing %s: nothing left to negotiate", kind, spec)
	}
	return slices.Compact(out), nil
}

// hostKeyAlgorithms narrows what known_hosts holds for the host to the
// user's list, in the user's order; with no list, known_hosts decides
// alone (golang/go#29286).
func hostKeyAlgorithms(fromKnownHosts, configured []string) []string {
	if len(configured) == 0 {
		return fromKnownHosts
	}
	if len(fromKnownHosts) == 0 {
		return configured
	}
	var out []string
	for _, a := range configured {
		if slices.Contains(fromKnownHosts, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		// Nothing in common: the handshake fails naming both sides' lists.
		return configured
	}
	return out
}
