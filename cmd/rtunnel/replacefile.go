package main

import (
	"os"
	"path/filepath"
)

// writeReplacing writes path through a temporary file in its directory and
// a rename, so a reader sees the old content or the new, never a part.
// The file is 0644 despite the unit's UMask=0077: what is written this way
// (forwarded ports, Prometheus targets) is read by other programs and is
// no secret.
func writeReplacing(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
