package tunnel

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// LoadIdentity reads an unencrypted private key (ed25519, ECDSA or RSA).
// Like ssh, it refuses a key file that group or others may access, or that
// another non-root user owns.
func LoadIdentity(path string) (ssh.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Fault: FileUnreadable,
			Msg: fmt.Sprintf("cannot read: %v; create one with ssh-keygen -t ed25519 -N '' -f %s", unwrapPathErr(err), path)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyFileError{Path: path, Fault: FileUnusable, Msg: "is not a regular file"}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Fault: FileUnreadable, Msg: fmt.Sprintf("cannot read: %v", unwrapPathErr(err))}
	}
	// Before the mode: a .pub file is 0644, and "too open" would send
	// the operator to chmod the wrong file.
	if _, _, _, _, err := ssh.ParseAuthorizedKey(data); err == nil {
		return nil, &KeyFileError{Path: path, Fault: FileUnusable, Msg: "this is a public key: identity must name the private key " + privateKeyHint(path)}
	}
	if msg := unsafeFile(path, fi, true); msg != "" {
		return nil, &KeyFileError{Path: path, Fault: FileUnsafe, Msg: msg}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &KeyFileError{Path: path, Fault: FileUnreadable, Msg: "is empty (is it being rewritten?)"}
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, &KeyFileError{Path: path, Fault: FileUnusable,
				Msg: fmt.Sprintf("is protected by a passphrase, and rtunnel runs unattended: use a dedicated key without one (ssh-keygen -t ed25519 -N '' -f %s)", path)}
		}
		// Unreadable, not unusable: a key cut short by a rewrite reads so.
		return nil, &KeyFileError{Path: path, Fault: FileUnreadable,
			Msg: fmt.Sprintf("is not a private key rtunnel can use: %v (it needs an OpenSSH or PEM ed25519, ECDSA or RSA key)", err)}
	}
	return signer, nil
}

// privateKeyHint names where the private key usually is, next to a public
// key given by mistake.
func privateKeyHint(path string) string {
	if priv, ok := strings.CutSuffix(path, ".pub"); ok {
		return fmt.Sprintf("(usually the same name without .pub: %s)", priv)
	}
	return "(the file ssh-keygen wrote without .pub)"
}

// Check validates every key file and known_hosts file of cfg without
// connecting: what `rtunnel check` and startup run so nothing half-starts.
// An agent is not asked: it may start after rtunnel, and is retried.
func Check(cfg Config) []error {
	var errs []error
	seen := map[string]bool{}
	for _, ep := range cfg.hops() {
		for _, id := range ep.Identities {
			if !seen["id:"+id] {
				seen["id:"+id] = true
				if ep.IdentityAgent != "" && publicKeyFile(id) != nil {
					continue // the agent holds its private key
				}
				if _, err := LoadIdentity(id); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if c := ep.Certificate; c != "" && !seen["cert:"+c] {
			seen["cert:"+c] = true
			if _, err := loadCertificate(c); err != nil {
				errs = append(errs, err)
			}
		}
		hk, err := newHostKeys(ep, nil)
		if err != nil {
			if !seen["kh:"+ep.KnownHosts] {
				errs = append(errs, err)
			}
			seen["kh:"+ep.KnownHosts] = true
			continue
		}
		if !ep.AcceptNew && hk.Algorithms() == nil {
			errs = append(errs, &KnownHostsError{Path: ep.KnownHosts, Fault: FileUnusable, Err: fmt.Errorf("has no key for %s (hop %s): add it with %s",
				knownhosts.Normalize(ep.hostKeyAddr()), ep, keyscanCommand(ep.Host, ep.Port, "", ep.KnownHosts))})
		}
	}
	return errs
}
