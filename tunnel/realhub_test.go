package tunnel

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/authkeys"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// realHub is a real OpenSSH sshd for the identity and trust tests, with a
// forward port its authorized_keys lines permit.
type realHub struct {
	srv  *sshdtest.Server
	port int    // the remote forward port
	dir  string // the test's own files: keys, CAs, known_hosts
}

// startRealHub starts sshd; extra is appended to its sshd_config.
func startRealHub(t *testing.T, extra string, hostKeyTypes ...string) *realHub {
	t.Helper()
	sshdtest.Require(t)
	h := &realHub{dir: t.TempDir(), port: sshdtest.FreePort(t)}
	h.srv = sshdtest.Start(t, sshdtest.Options{Name: "hub", Extra: extra, HostKeyTypes: hostKeyTypes})
	return h
}

// guideLine is the setup guide's locked-down line for key, as rtunnel
// authorized-key prints it; options "cert-authority" is its --ca form.
func (h *realHub) guideLine(options, key string) string {
	opts, err := authkeys.Options(authkeys.Spec{Role: authkeys.DirectRemote, Ports: []int{h.port}, CertAuthority: options == "cert-authority"})
	if err != nil {
		panic(err)
	}
	return opts + " " + key
}

// config is a tunnel to the hub with one forward, as ep describes the login.
func (h *realHub) config(ep Endpoint, l *logs) Config {
	ep.User, ep.Host, ep.Port = "root", "127.0.0.1", h.srv.Port
	if ep.ConnectTimeout == 0 {
		ep.ConnectTimeout = 5 * time.Second
	}
	return Config{
		Name:          "t",
		Server:        ep,
		Forwards:      []Forward{{RemoteHost: "localhost", RemotePort: h.port, Local: "127.0.0.1:9"}},
		ShutdownGrace: time.Second,
		Log:           l.logger(),
	}
}

// errNotUp is sessionUp's answer for a session that ended cleanly
// without ever carrying its forwards.
var errNotUp = errors.New("session ended without coming up")

// sessionUp runs one session of tn: nil once it carries its forwards (it
// is then stopped), else the error it ended with.
func sessionUp(t *testing.T, tn *Tunnel) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	up := false
	err := tn.Session(ctx, func() { up = true; cancel() })
	switch {
	case up:
		return nil
	case err == nil:
		return errNotUp
	}
	return err
}

// tool runs a program (ssh-keygen, ssh-add) bounded in time and returns
// its combined output, failing the test when it fails.
func tool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newCA makes a CA key pair with ssh-keygen; it returns the private key
// path and the public key line.
func newCA(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	k := sshdtest.NewKey(t, dir, name, "ed25519")
	return k.Private, k.PublicLine
}

// sign signs pub with the CA as ssh-keygen -s does; extra are further
// flags (-h for a host, -V for validity). It returns the certificate path.
func sign(t *testing.T, ca, pub, principals string, extra ...string) string {
	t.Helper()
	args := append([]string{"-q", "-s", ca, "-I", "rtunnel-test", "-n", principals}, extra...)
	tool(t, nil, "ssh-keygen", append(args, pub)...)
	return strings.TrimSuffix(pub, ".pub") + "-cert.pub"
}

// sshExit runs the real ssh client against the hub with the given -o
// options and returns its exit status and stderr: 255 is ssh's own
// failure (host key, authentication), anything else means it logged in
// (the guide's line runs /bin/false).
func (h *realHub) sshExit(t *testing.T, env []string, opts ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
		"-p", strconv.Itoa(h.srv.Port)}
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	cmd := exec.CommandContext(ctx, "ssh", append(args, "root@127.0.0.1", "true")...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("ssh: %v", err)
	return 0, ""
}

func writeLines(t *testing.T, path string, lines ...string) string {
	t.Helper()
	writeFile(t, path, strings.Join(lines, "\n")+"\n", 0o644)
	return path
}

func hostPub(h *realHub, typ string) string {
	return filepath.Join(h.srv.Dir, "ssh_host_"+typ+"_key.pub")
}

// knownHosts writes the hub's plain host keys to a fresh known_hosts.
func (h *realHub) knownHosts(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	h.srv.WriteKnownHosts(t, p, "127.0.0.1")
	return p
}

// sshTrust is the ssh option trusting the hub's plain host keys.
func (h *realHub) sshTrust(t *testing.T) string {
	return "UserKnownHostsFile=" + h.knownHosts(t)
}
