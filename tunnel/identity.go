package tunnel

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/crypto/ssh"
)

// LoadIdentity reads an unencrypted private key (ed25519, ECDSA or RSA).
// Like ssh, it refuses a key file that group or others may access.
func LoadIdentity(path string) (ssh.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Msg: fmt.Sprintf("cannot read: %v; create one with ssh-keygen -t ed25519 -N '' -f %s", unwrapPathErr(err), path)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyFileError{Path: path, Msg: "is not a regular file"}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &KeyFileError{Path: path, Msg: fmt.Sprintf("permissions %04o are too open: a private key must not be accessible by group or others, as ssh requires; fix with chmod 600 %s", perm, path)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Msg: fmt.Sprintf("cannot read: %v", unwrapPathErr(err))}
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, &KeyFileError{Path: path, Msg: fmt.Sprintf("is protected by a passphrase, and rtunnel runs unattended: use a dedicated key without one (ssh-keygen -t ed25519 -N '' -f %s)", path)}
		}
		return nil, &KeyFileError{Path: path, Msg: fmt.Sprintf("is not a private key rtunnel can use: %v (it needs an OpenSSH or PEM ed25519, ECDSA or RSA key; is this the .pub file?)", err)}
	}
	return signer, nil
}

// Check validates every key file and known_hosts file of cfg without
// connecting: what `rtunnel check` and startup run so nothing half-starts.
func Check(cfg Config) []error {
	var errs []error
	seen := map[string]bool{}
	for _, ep := range cfg.hops() {
		if !seen["id:"+ep.Identity] {
			seen["id:"+ep.Identity] = true
			if _, err := LoadIdentity(ep.Identity); err != nil {
				errs = append(errs, err)
			}
		}
		cb, err := LoadKnownHosts(ep.KnownHosts)
		if err != nil {
			if !seen["kh:"+ep.KnownHosts] {
				errs = append(errs, err)
			}
			seen["kh:"+ep.KnownHosts] = true
			continue
		}
		if algorithmsFor(cb, ep.Addr()) == nil {
			errs = append(errs, &KnownHostsError{Path: ep.KnownHosts, Err: fmt.Errorf("has no key for %s (hop %s): add it with ssh-keyscan %s",
				knownHostsName(ep.Host, ep.Port), ep, keyscanArgs(ep))})
		}
	}
	return errs
}

func keyscanArgs(ep *Endpoint) string {
	if ep.Port == 22 {
		return fmt.Sprintf("%s >> %s", ep.Host, ep.KnownHosts)
	}
	return fmt.Sprintf("-p %d %s >> %s", ep.Port, ep.Host, ep.KnownHosts)
}
