package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/internal/authkeys"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
	"github.com/rtunnel/rtunnel/tunnel"
	"go.uber.org/goleak"
)

// checkHub is a loopback sshd standing for a hub, with one tunnel key.
type checkHub struct {
	dir    string
	hub    *sshdtest.Server
	key    sshdtest.Key
	kh     string
	port   int // the tunnel port permitlisten allows
	target net.Listener
}

func newCheckHub(t *testing.T) *checkHub {
	t.Helper()
	sshdtest.Require(t)
	// Registered first, so it runs after every other cleanup (sshd, listeners).
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	h := &checkHub{dir: t.TempDir()}
	h.key = sshdtest.NewKey(t, h.dir, "id_tunnel", "ed25519")
	h.port = sshdtest.FreePort(t)
	h.hub = sshdtest.Start(t, sshdtest.Options{Name: "hub"})
	h.setLine(t, h.guideLine(t))
	h.kh = filepath.Join(h.dir, "known_hosts")
	h.hub.WriteKnownHosts(t, h.kh, "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.target = ln
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return h
}

func (h *checkHub) guideLine(t *testing.T) string {
	t.Helper()
	line, err := authkeys.Line(authkeys.Spec{Role: authkeys.DirectRemote, Ports: []int{h.port}}, []byte(h.key.PublicLine))
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func (h *checkHub) setLine(t *testing.T, line string) { h.hub.SetAuthorizedKeys(t, []string{line}) }

// config writes a config with one forward of remotePort to local.
func (h *checkHub) config(t *testing.T, remotePort int, local string) string {
	t.Helper()
	return writeFile(t, h.dir, fmt.Sprintf("rtunnel-%d.yaml", time.Now().UnixNano()), fmt.Sprintf(`tunnels:
  - name: hub
    server: root@127.0.0.1:%d
    identity: %s
    known_hosts: %s
    connect_timeout: 5s
    forwards:
      - remote: localhost:%d
        local: %s
`, h.hub.Port, h.key.Private, h.kh, remotePort, local))
}

func (h *checkHub) check(t *testing.T, path string) (bool, string) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	failures := checkConnect(ctx, cfg, &out)
	t.Logf("check --connect:\n%s", out.String())
	return len(failures) == 0, out.String()
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

func TestCheckConnectAllPass(t *testing.T) {
	h := newCheckHub(t)
	path := h.config(t, h.port, h.target.Addr().String())
	hub := fmt.Sprintf("root@127.0.0.1:%d", h.hub.Port)
	ok, out := h.check(t, path)
	if !ok {
		t.Fatalf("checkConnect failed")
	}
	wantLines(t, out,
		"tunnel hub: "+hub+"\n",
		"  ok    connect "+hub+": TCP connection to 127.0.0.1:"+strconv.Itoa(h.hub.Port)+"\n",
		"  ok    host key "+hub+": ssh-ed25519 SHA256:",
		fmt.Sprintf("under the name [127.0.0.1]:%d\n", h.hub.Port),
		"  ok    auth "+hub+": key "+h.key.Fingerprint+" ("+h.key.Private+") accepted for user root\n",
		fmt.Sprintf("  ok    forward localhost:%d: %s allowed it (requested, then cancelled)\n", h.port, hub),
		"  ok    local target "+h.target.Addr().String()+": accepts TCP connections",
		"connect: all 5 steps passed\n")
	if strings.Contains(out, "FAIL") {
		t.Errorf("a step failed")
	}
	// The forward was cancelled: the hub does not hold the port.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(h.port), time.Second); err == nil {
		c.Close()
		t.Errorf("the hub still listens on %d after the check", h.port)
	}

	// Through the command: exit 0, "ok" from the offline checks first.
	code, stdout, stderr := runCmd(t, "check", "--connect", "--config", path)
	if code != 0 || !strings.HasPrefix(stdout, "ok\ntunnel hub:") {
		t.Errorf("rtunnel check --connect: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestCheckConnectFailures(t *testing.T) {
	h := newCheckHub(t)
	hub := fmt.Sprintf("root@127.0.0.1:%d", h.hub.Port)
	local := h.target.Addr().String()
	pub := h.key.PublicLine

	t.Run("key rejected for an invalid option", func(t *testing.T) {
		// The guide's trap: permitlisten="none" makes sshd reject the whole key.
		h.setLine(t, `restrict,port-forwarding,permitlisten="none",permitopen="255.255.255.255:9",command="/bin/false" `+pub)
		ok, out := h.check(t, h.config(t, h.port, local))
		if ok {
			t.Fatal("check passed")
		}
		wantLines(t, out,
			"  ok    host key "+hub,
			"  FAIL  auth "+hub+": 127.0.0.1:"+strconv.Itoa(h.hub.Port)+" refused key "+h.key.Fingerprint+" ("+h.key.Private+") for user root",
			"fix: compare the fingerprints with `ssh-keygen -l -f ~root/.ssh/authorized_keys` on 127.0.0.1",
			`permitlisten="none"`,
			"  ok    local target "+local,
			"connect: 1 of 4 steps failed\n")
		if strings.Contains(out, "  forward localhost") {
			t.Errorf("forward probed after a failed login")
		}
	})

	t.Run("permitlisten without port-forwarding", func(t *testing.T) {
		h.setLine(t, fmt.Sprintf(`restrict,permitlisten="localhost:%d",permitopen="255.255.255.255:9",command="/bin/false" %s`, h.port, pub))
		ok, out := h.check(t, h.config(t, h.port, local))
		if ok {
			t.Fatal("check passed")
		}
		wantLines(t, out,
			"  ok    auth "+hub,
			fmt.Sprintf("  FAIL  forward localhost:%d: %s refused tcpip-forward localhost:%d; a direct-tcpip open of 255.255.255.255:9 was refused too", h.port, hub, h.port),
			"fix: permitlisten needs port-forwarding",
			"connect: 1 of 5 steps failed\n")
	})

	t.Run("port not allowed by permitlisten", func(t *testing.T) {
		h.setLine(t, h.guideLine(t))
		other := sshdtest.FreePort(t)
		ok, out := h.check(t, h.config(t, other, local))
		if ok {
			t.Fatal("check passed")
		}
		wantLines(t, out,
			fmt.Sprintf("  FAIL  forward localhost:%d: %s refused tcpip-forward localhost:%d; port forwarding itself is on for this key", other, hub, other),
			"fix: the hub refused the port: it is held, or permitlisten does not allow it; the hub's sshd log tells which",
			fmt.Sprintf(`permitlisten="localhost:%d"`, other))
		// The fix text's claim about the hub's log.
		h.hub.WaitLog(t, fmt.Sprintf("to remote forward to host localhost port %d, but the request was denied", other), 5*time.Second)
	})

	t.Run("port held by another session", func(t *testing.T) {
		h.setLine(t, h.guideLine(t))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		holder := sshdtest.SSHCommand(ctx, h.key, h.kh, "-N", "-o", "ExitOnForwardFailure=yes",
			"-R", fmt.Sprintf("localhost:%d:%s", h.port, local), "-p", strconv.Itoa(h.hub.Port), "root@127.0.0.1")
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		defer holder.Wait()
		defer cancel()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(h.port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ssh -R did not take port %d", h.port)
			}
			time.Sleep(50 * time.Millisecond)
		}
		ok, out := h.check(t, h.config(t, h.port, local))
		if ok {
			t.Fatal("check passed")
		}
		wantLines(t, out, "fix: the hub refused the port: it is held, or permitlisten does not allow it; the hub's sshd log tells which")
		h.hub.WaitLog(t, fmt.Sprintf("bind [127.0.0.1]:%d: Address already in use", h.port), 5*time.Second)
	})

	t.Run("local target refused", func(t *testing.T) {
		h.setLine(t, h.guideLine(t))
		dead := "127.0.0.1:" + strconv.Itoa(sshdtest.FreePort(t))
		path := h.config(t, h.port, dead)
		ok, out := h.check(t, path)
		if ok {
			t.Fatal("check passed")
		}
		wantLines(t, out,
			fmt.Sprintf("  ok    forward localhost:%d", h.port),
			"  FAIL  local target "+dead+": local target refused: dial tcp "+dead+": connect: connection refused",
			"fix: nothing listens on "+dead,
			"connect: 1 of 5 steps failed\n")
		code, stdout, stderr := runCmd(t, "check", "--connect", "--config", path)
		if code != exitFail || !strings.Contains(stderr, "it may be transient") || !strings.Contains(stdout, "FAIL  local target") {
			t.Errorf("rtunnel check --connect: exit %d, want %d\n%s%s", code, exitFail, stdout, stderr)
		}
	})

	t.Run("host key changed", func(t *testing.T) {
		other := sshdtest.Start(t, sshdtest.Options{Name: "impostor"})
		kh := filepath.Join(t.TempDir(), "known_hosts")
		lines := other.KnownHostsLines("127.0.0.1")
		for i, l := range lines {
			lines[i] = strings.Replace(l, fmt.Sprintf("]:%d ", other.Port), fmt.Sprintf("]:%d ", h.hub.Port), 1)
		}
		if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		path := h.config(t, h.port, local)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, bytes.Replace(data, []byte(h.kh), []byte(kh), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		ok, out := h.check(t, path)
		if ok {
			t.Fatal("check passed")
		}
		wantLines(t, out, "  FAIL  host key "+hub+": HOST KEY FOR "+hub+" HAS CHANGED", "fix: if "+hub+" was reinstalled")
		wantExit(t, path, exitConfig, "retrying cannot fix")
	})

	t.Run("host key revoked", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		lines := h.hub.KnownHostsLines("127.0.0.1")
		revoked := "@revoked " + lines[0]
		if err := os.WriteFile(kh, []byte(revoked+"\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		path := h.config(t, h.port, local)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, bytes.Replace(data, []byte(h.kh), []byte(kh), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		_, out := h.check(t, path)
		wantLines(t, out, "  FAIL  host key "+hub+": host key of "+hub, "is marked @revoked", "fix: the key is revoked: do not connect")
		wantExit(t, path, exitConfig, "retrying cannot fix")
	})

	t.Run("key not in the hub's authorized_keys", func(t *testing.T) {
		stranger := sshdtest.NewKey(t, t.TempDir(), "id_other", "ed25519")
		h.setLine(t, stranger.PublicLine)
		path := h.config(t, h.port, local)
		_, out := h.check(t, path)
		wantLines(t, out, "  FAIL  auth "+hub+": 127.0.0.1:"+strconv.Itoa(h.hub.Port)+" refused key "+h.key.Fingerprint)
		// The same classification as rtunnel up: tunnel.Permanent decides.
		want, why := exitFail, "it may be transient"
		if tunnel.Permanent(&tunnel.AuthError{Hop: hub, Offered: []string{"key " + h.key.Fingerprint}, Err: errors.New("ssh: unable to authenticate")}) {
			want, why = exitConfig, "retrying cannot fix"
		}
		wantExit(t, path, want, why)
	})

	t.Run("nothing listens at the hub's port", func(t *testing.T) {
		h.setLine(t, h.guideLine(t))
		dead := sshdtest.FreePort(t)
		path := h.config(t, h.port, local)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.Replace(data, []byte(fmt.Sprintf("127.0.0.1:%d\n", h.hub.Port)), []byte(fmt.Sprintf("127.0.0.1:%d\n", dead)), 1)
		// known_hosts vouches for the dead port too, so the offline checks pass.
		kh := filepath.Join(t.TempDir(), "known_hosts")
		lines := h.hub.KnownHostsLines("127.0.0.1")
		for i, l := range lines {
			lines[i] = strings.Replace(l, fmt.Sprintf("]:%d ", h.hub.Port), fmt.Sprintf("]:%d ", dead), 1)
		}
		if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		data = bytes.Replace(data, []byte(h.kh), []byte(kh), 1)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, out := h.check(t, path)
		wantLines(t, out, fmt.Sprintf("fix: nothing accepts connections at 127.0.0.1:%d", dead))
		wantExit(t, path, exitFail, "it may be transient")
	})
}

// check --connect with a socket forward, a port-0 forward and local
// forwards: each is asked for (or bound, or opened) once and given back.
func TestCheckConnectForwardKinds(t *testing.T) {
	h := newCheckHub(t)
	hub := fmt.Sprintf("root@127.0.0.1:%d", h.hub.Port)
	target := h.target.Addr().String()
	line, err := authkeys.Line(authkeys.Spec{Role: authkeys.DirectRemote, AnyPort: true, Opens: []string{target}}, []byte(h.key.PublicLine))
	if err != nil {
		t.Fatal(err)
	}
	h.setLine(t, line)
	sock := filepath.Join(h.dir, "remote-7.sock")
	listen := "127.0.0.1:" + strconv.Itoa(sshdtest.FreePort(t))
	forbidden := "127.0.0.1:" + strconv.Itoa(sshdtest.FreePort(t))
	path := writeFile(t, h.dir, "kinds.yaml", fmt.Sprintf(`tunnels:
  - name: hub
    server: %s
    identity: %s
    known_hosts: %s
    connect_timeout: 5s
    forwards:
      - {remote: %s, local: %q}
      - {remote: "localhost:0", local: %q}
    local_forwards:
      - {listen: %q, connect: %q}
      - {listen: %q, connect: "127.0.0.1:9"}
`, hub, h.key.Private, h.kh, sock, target, target, listen, target, forbidden))
	ok, out := h.check(t, path)
	if ok {
		t.Fatal("check passed with a forbidden local forward target")
	}
	wantLines(t, out,
		"  ok    forward "+sock+": "+hub+" allowed it (requested, then cancelled; sshd leaves the socket file behind, "+
			"so the hub needs StreamLocalBindUnlink yes or the tunnel's next request for it is refused)\n",
		"  ok    forward localhost:0: "+hub+" allowed it and picked port ",
		"  ok    local forward listen "+listen+": can be bound here (bound, then released)\n",
		"  ok    local forward connect "+target+": "+hub+" opened direct-tcpip to it (opened, then closed)\n",
		"  FAIL  local forward connect 127.0.0.1:9: ssh: rejected: administratively prohibited",
		`        fix: the key's line on `+hub+` needs permitopen="127.0.0.1:9" (rtunnel authorized-key --permitopen 127.0.0.1:9 prints it)`,
		"connect: 1 of 10 steps failed\n")
	// What the socket step warns about: sshd does not remove it on cancel.
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("socket file after the check: %v; sshd used to leave it behind (the step's warning would be wrong)", err)
	}
}

// wantExit runs `rtunnel check --connect` on path and checks its status.
func wantExit(t *testing.T, path string, want int, stderrHas string) {
	t.Helper()
	code, stdout, stderr := runCmd(t, "check", "--connect", "--config", path)
	if code != want || !strings.Contains(stderr, stderrHas) {
		t.Errorf("rtunnel check --connect: exit %d, want %d with %q\n%s%s", code, want, stderrHas, stdout, stderr)
	}
}
