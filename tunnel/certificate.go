package tunnel

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
)

// loadCertificate reads an OpenSSH user certificate (KEY-cert.pub, or the
// file certificate: names). A file that is not one is a KeyFileError: it
// stays wrong until someone fixes it.
func loadCertificate(path string) (*ssh.Certificate, error) {
	// Like the key and known_hosts: stat first, so that a FIFO is refused
	// instead of blocking the read, and a file others may rewrite is refused.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Fault: FileUnreadable, Msg: fmt.Sprintf("certificate cannot be read: %v", unwrapPathErr(err))}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyFileError{Path: path, Fault: FileUnusable, Msg: "certificate is not a regular file"}
	}
	if msg := unsafeFile(path, fi, false); msg != "" {
		return nil, &KeyFileError{Path: path, Fault: FileUnsafe, Msg: msg}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &KeyFileError{Path: path, Fault: FileUnreadable, Msg: fmt.Sprintf("certificate cannot be read: %v", unwrapPathErr(err))}
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		// Unreadable, not unusable: a certificate cut short by a renewal reads so.
		return nil, &KeyFileError{Path: path, Fault: FileUnreadable, Msg: fmt.Sprintf("is not an OpenSSH certificate: %v (sign the public key with ssh-keygen -s CA -I ID -n PRINCIPAL KEY.pub)", err)}
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, &KeyFileError{Path: path, Fault: FileUnusable, Msg: fmt.Sprintf("holds a plain %s public key, not a certificate (sign it with ssh-keygen -s CA -I ID -n PRINCIPAL)", pub.Type())}
	}
	if cert.CertType != ssh.UserCert {
		return nil, &KeyFileError{Path: path, Fault: FileUnusable, Msg: "is a host certificate; logging in needs a user certificate (ssh-keygen -s without -h)"}
	}
	return cert, nil
}

// certifies reports whether cert is for the key pub.
func certifies(cert *ssh.Certificate, pub ssh.PublicKey) bool {
	return bytes.Equal(cert.Key.Marshal(), pub.Marshal())
}

// certWindow says when a certificate is valid, as ssh-keygen -L does.
func certWindow(cert *ssh.Certificate) string {
	from, to := "always", "forever"
	if cert.ValidAfter != 0 {
		from = certTime(cert.ValidAfter).Format(time.RFC3339)
	}
	if cert.ValidBefore != ssh.CertTimeInfinity {
		to = certTime(cert.ValidBefore).Format(time.RFC3339)
	}
	return "valid from " + from + " to " + to
}

func certTime(t uint64) time.Time {
	if t > 1<<62 {
		return time.Unix(1<<62, 0).UTC()
	}
	return time.Unix(int64(t), 0).UTC()
}

// certValidNow explains, when cert is outside its validity window at now,
// what is wrong; "" when it is valid.
func certValidNow(cert *ssh.Certificate, now time.Time) string {
	unix := now.Unix()
	switch {
	case unix < 0 || uint64(unix) < cert.ValidAfter:
		return fmt.Sprintf("is not valid yet (%s; now is %s): is this machine's clock right?", certWindow(cert), now.UTC().Format(time.RFC3339))
	case cert.ValidBefore != ssh.CertTimeInfinity && uint64(unix) >= cert.ValidBefore:
		return fmt.Sprintf("has expired (%s; now is %s): renew it; rtunnel reads the file again at the next connect", certWindow(cert), now.UTC().Format(time.RFC3339))
	}
	return ""
}
