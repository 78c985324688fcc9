package tunnel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// learnMu serialises known_hosts writes in this process: tunnels sharing a
// file, and parallel connect attempts of one tunnel, each re-read the file
// under it before adding a line.
var learnMu sync.Mutex

// learn is StrictHostKeyChecking accept-new for an unknown host: key is
// added to known_hosts and trusted. If the file meanwhile holds a key for
// the host (another tunnel or attempt wrote it), that line decides: a
// different key is a changed key, refused and never written.
func (h *hostKeys) learn(key ssh.PublicKey, he *HostKeyError) error {
	learnMu.Lock()
	defer learnMu.Unlock()
	path, addr := h.ep.KnownHosts, h.ep.hostKeyAddr()
	cb, _, err := loadKnownHosts(path, true)
	if err != nil {
		h.setErr(err)
		return err
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch err := cb(addr, fakeRemote, key); {
	case err == nil:
		return nil
	case errors.As(err, &re):
		he.Kind = HostRevoked
		h.setErr(he)
		return he
	case errors.As(err, &ke) && len(ke.Want) > 0:
		he.Kind = HostChanged
		for _, w := range ke.Want {
			he.WantLines = append(he.WantLines, fmt.Sprintf("%s:%d has %s", w.Filename, w.Line, w.Key.Type()))
		}
		h.setErr(he)
		return he
	}
	name := knownhosts.Normalize(addr)
	if h.ep.HashKnownHosts {
		name = knownhosts.HashHostname(name)
	}
	if err := appendAtomically(path, knownhosts.Line([]string{name}, key)+"\n"); err != nil {
		kerr := &KnownHostsError{Path: path, Fault: FileUnusable, Err: fmt.Errorf("cannot add the new host's key (accept-new): %w", err)}
		h.setErr(kerr)
		return kerr
	}
	h.log.Warn("host was unknown: its key is now in known_hosts (strict_host_key_checking: accept-new); a later change of this key is refused",
		"hop", h.ep.String(), "known_hosts", path, "name", knownhosts.Normalize(addr), "key_type", key.Type(), "fingerprint", ssh.FingerprintSHA256(key))
	return nil
}

// appendAtomically writes the file with line added through a temporary
// file and a rename, so a reader (ssh, another rtunnel) sees the old file
// or the new one, never half of it. Mode and owner are kept; a new file is
// 0644, as ssh creates it.
func appendAtomically(path, line string) error {
	old, err := os.ReadFile(path)
	mode, uid, gid := fs.FileMode(0o644), -1, -1
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		mode = fi.Mode().Perm()
		u, uok := fileOwner(fi)
		g, gok := fileGroup(fi)
		if uok && gok {
			uid, gid = u, g
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".rtunnel-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	_, err = tmp.Write(append(old, line...))
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil && uid >= 0 && os.Geteuid() == 0 {
		err = tmp.Chown(uid, gid)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
