package tunnel

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/rtunnel/rtunnel/internal/sshpattern"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// certAlgorithms are the host certificate algorithms, in OpenSSH's order.
var certAlgorithms = []string{
	ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01,
	ssh.CertAlgoSKED25519v01, ssh.CertAlgoSKECDSA256v01, ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01,
}

// authority is one @cert-authority line: the hosts it covers and its key.
type authority struct {
	patterns []string
	key      ssh.PublicKey
}

// authorities lists a known_hosts file's @cert-authority lines.
//
// rtunnel matches them itself, as OpenSSH does: against the name
// known_hosts uses ("host", or "[host]:port" off port 22). x/crypto's own
// matcher gives a pattern without brackets port 22 only, so the common
// "@cert-authority * CA" would not cover a hub on another port.
func authorities(data []byte) []authority {
	var out []authority
	for len(data) > 0 {
		marker, hosts, key, _, rest, err := ssh.ParseKnownHosts(data)
		if err != nil {
			break // x/crypto already refused or skipped what does not parse
		}
		if marker == "cert-authority" {
			out = append(out, authority{patterns: hosts, key: key})
		}
		data = rest
	}
	return out
}

// certChecker checks host certificates against the file's CAs and plain
// keys against its other lines (kh, x/crypto's knownhosts check); @revoked
// lines apply to a certificate's key and to its CA.
func certChecker(kh ssh.HostKeyCallback, cas []authority) ssh.HostKeyCallback {
	c := &ssh.CertChecker{
		IsHostAuthority: func(ca ssh.PublicKey, addr string) bool { return caCovers(cas, ca, addr) },
		IsRevoked: func(cert *ssh.Certificate) bool {
			return isRevoked(kh, cert.Key) || isRevoked(kh, cert.SignatureKey)
		},
		HostKeyFallback: kh,
	}
	return c.CheckHostKey
}

// isRevoked asks x/crypto, which looks @revoked keys up before any name.
func isRevoked(kh ssh.HostKeyCallback, key ssh.PublicKey) bool {
	var re *knownhosts.RevokedError
	return errors.As(kh("revocation-check:22", fakeRemote, key), &re)
}

// caCovers reports whether an @cert-authority line for ca (any CA when
// ca is nil) covers addr. Off port 22 ssh looks a CA up under "[host]:port"
// and then under the bare host ("checking without port identifier").
func caCovers(cas []authority, ca ssh.PublicKey, addr string) bool {
	names := []string{knownhosts.Normalize(addr)}
	if host, port, err := net.SplitHostPort(addr); err == nil && port != "22" {
		names = append(names, knownhosts.Normalize(net.JoinHostPort(host, "22")))
	}
	return slices.ContainsFunc(cas, func(a authority) bool {
		return (ca == nil || sameKey(a.key, ca)) && slices.ContainsFunc(names, func(n string) bool { return hostMatches(a.patterns, n) })
	})
}

// hostMatches is OpenSSH's match for a known_hosts host field: any
// pattern matching (wildcards * and ?, case-insensitive) and no negated
// one; a hashed entry is HMAC-SHA1 of the name with its salt.
func hostMatches(patterns []string, name string) bool {
	name = strings.ToLower(name)
	matched := false
	for _, p := range patterns {
		if strings.HasPrefix(p, "|1|") {
			matched = matched || hashedMatch(p, name)
			continue
		}
		negated := strings.HasPrefix(p, "!")
		if !sshpattern.Match(name, strings.ToLower(strings.TrimPrefix(p, "!"))) {
			continue
		}
		if negated {
			return false
		}
		matched = true
	}
	return matched
}

func hashedMatch(entry, name string) bool {
	parts := strings.Split(entry, "|") // "", "1", salt, hash
	if len(parts) != 4 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	want, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(name))
	return hmac.Equal(mac.Sum(nil), want)
}

// hasAuthority reports whether known_hosts trusts a CA for the endpoint.
func (h *hostKeys) hasAuthority() bool { return caCovers(h.cas, nil, h.ep.hostKeyAddr()) }

// checkCertificate explains a host certificate that did not verify. As
// ssh does, such a certificate falls back to its plain key: a known_hosts
// line for that key still lets the host in.
func (h *hostKeys) checkCertificate(addr string, remote net.Addr, cert *ssh.Certificate, certErr error, he *HostKeyError) error {
	plainErr := h.plain(addr, remote, cert.Key)
	if plainErr == nil && !isRevoked(h.plain, cert.SignatureKey) {
		h.log.Warn("host certificate refused, but the host's plain key is in known_hosts: accepted, as ssh accepts it",
			"hop", h.ep.String(), "known_hosts", h.ep.KnownHosts, "key", ssh.FingerprintSHA256(cert.Key), "why", certErr.Error())
		return nil
	}
	he.CA = ssh.FingerprintSHA256(cert.SignatureKey)
	he.Window = certWindow(cert)
	he.Principals = cert.ValidPrincipals
	host, _, _ := net.SplitHostPort(addr)
	now := time.Now().Unix()
	var ke *knownhosts.KeyError
	switch {
	case isRevoked(h.plain, cert.Key) || isRevoked(h.plain, cert.SignatureKey):
		he.Kind = HostRevoked
	case !caCovers(h.cas, cert.SignatureKey, addr) && h.learns() && errors.As(plainErr, &ke) && len(ke.Want) == 0:
		// ssh with accept-new learns the plain key of a host whose
		// certificate no CA vouches for.
		he.KeyType, he.Offered = cert.Key.Type(), ssh.FingerprintSHA256(cert.Key)
		return h.learn(cert.Key, he)
	case !caCovers(h.cas, cert.SignatureKey, addr):
		he.Kind = HostCertUntrusted
	case cert.CertType != ssh.HostCert:
		he.Kind, he.Detail = HostCertInvalid, "it is a user certificate"
	case now < int64(min(cert.ValidAfter, 1<<62)):
		he.Kind = HostCertNotYetValid
	case cert.ValidBefore != ssh.CertTimeInfinity && now >= int64(min(cert.ValidBefore, 1<<62)):
		he.Kind = HostCertExpired
	case !slices.Contains(cert.ValidPrincipals, host):
		he.Kind = HostCertPrincipal
	default:
		he.Kind, he.Detail = HostCertInvalid, strings.TrimPrefix(certErr.Error(), "ssh: ")
	}
	h.setErr(he)
	return he
}
