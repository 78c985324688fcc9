package config

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkAccess applies OpenSSH's rule for ~/.ssh/config to the config file:
// whoever can change it can send the tunnels to their own server, so it must
// be owned by root or by the user rtunnel runs as, and not be writable by
// group or others. The package's 0640 root:rtunnel passes.
func checkAccess(path string, fi fs.FileInfo) Errors {
	var errs Errors
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != 0 && uid != os.Getuid() {
			errs = append(errs, &Error{File: path, Msg: fmt.Sprintf(
				"is owned by uid %d, neither root nor the user rtunnel runs as (uid %d): whoever owns it can send the tunnels elsewhere; fix with chown root %s",
				uid, os.Getuid(), path)})
		}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		errs = append(errs, &Error{File: path, Msg: fmt.Sprintf(
			"is writable by group or others (mode %04o): whoever can write it can send the tunnels elsewhere; fix with chmod go-w %s",
			perm, path)})
	}
	return errs
}
