package tunnel

import (
	"golang.org/x/crypto/ssh"
)

// Remote forwards to a Unix socket on the server: OpenSSH's
// streamlocal-forward@openssh.com (ssh -R /path:host:port). The request
// carries only the socket path; sshd then opens a
// forwarded-streamlocal@openssh.com channel per connection (OpenSSH's
// PROTOCOL, 2.4). x/crypto's Client.ListenUnix would do both, but it
// registers the channel type itself and the session already handles
// channel types by hand (see XCRYPTO-NOTES: do not mix the two).

// streamLocalPayload is the body of streamlocal-forward@openssh.com and of
// its cancel request.
type streamLocalPayload struct {
	Path string
}

// forwardedStreamLocalPayload is the body of a
// forwarded-streamlocal@openssh.com channel open.
type forwardedStreamLocalPayload struct {
	Path     string
	Reserved string
}

// lookupPath finds the socket forward a forwarded-streamlocal channel
// belongs to: only paths we asked for (and were not refused).
func (s *session) lookupPath(path string) *fwdState {
	for _, f := range s.fwds {
		if f.asked.Load() && f.f.RemotePath != "" && f.f.RemotePath == path {
			return f
		}
	}
	return nil
}

// acceptStreamLocal handles a forwarded-streamlocal channel the server
// opened, as acceptForwarded does for forwarded-tcpip.
func (s *session) acceptStreamLocal(nc ssh.NewChannel) {
	var p forwardedStreamLocalPayload
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "malformed forwarded-streamlocal request")
		s.warnLimited("bad-forwarded-streamlocal", "refused a malformed forwarded-streamlocal channel from the server", "err", err)
		return
	}
	f := s.lookupPath(p.Path)
	if f == nil {
		path := p.Path
		if len(path) > 108 { // sun_path's size: anything longer is no socket of ours
			path = path[:108] + "..."
		}
		s.rejectUnknown(nc, path)
		return
	}
	// sshd reports no origin for a socket connection.
	s.admitChannel(nc, f, "unix")
}
