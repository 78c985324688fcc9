package tunnel

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// unsafeFile applies OpenSSH's rule for the files it trusts (~/.ssh/config,
// authorized_keys): owned by root or by the user running rtunnel, and not
// writable by group or others; whoever can write a known_hosts or key file
// chooses which server rtunnel trusts or which key it presents. A private
// key must not be readable by group or others either (ssh's rule for
// identities). It returns what is wrong and the fix, or "".
func unsafeFile(path string, fi os.FileInfo, private bool) string {
	perm := fi.Mode().Perm()
	switch {
	case private && perm&0o077 != 0:
		return fmt.Sprintf("permissions %04o are too open: a private key must not be accessible by group or others, as ssh requires; fix with chmod 600 %s", perm, path)
	case perm&0o022 != 0:
		return fmt.Sprintf("permissions %04o let group or others write it, so another user could change what rtunnel trusts; ssh refuses such files too; fix with chmod go-w %s", perm, path)
	}
	uid, ok := fileOwner(fi)
	me := os.Getuid()
	if !ok || uid == 0 || uid == me {
		return ""
	}
	owners := "root, the user rtunnel runs as"
	if me != 0 {
		owners = "root or by " + describeUser(me) + ", the user rtunnel runs as"
	}
	return fmt.Sprintf("is owned by %s, not by %s, so that user could change it; ssh refuses such files too; fix with chown %s %s",
		describeUser(uid), owners, userName(me), path)
}

// userName is the login name of uid, or the number where there is none.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// describeUser is "name (uid N)", or "uid N" for a uid without a name.
func describeUser(uid int) string {
	if name := userName(uid); name != strconv.Itoa(uid) {
		return fmt.Sprintf("%s (uid %d)", name, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}
