package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// serveBanner accepts on ln until the test ends and writes banner to each
// connection, so a reader can tell who answered.
func serveBanner(t *testing.T, ln net.Listener, banner string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\r\n", banner)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

// bannerAt connects to addr and returns the first line it is sent.
func bannerAt(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "dial error: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// The squatter trap in deploy/hub/HUB.md: another process already listens
// on the hub's 127.0.0.1:PORT. sshd, asked for localhost:PORT, binds only
// [::1]:PORT and reports success; rtunnel (and check --connect) see a
// granted forward, and whoever connects to 127.0.0.1:PORT on the hub
// reaches the squatter. Only the hub can tell: its sshd log and ss -ltnp.
func TestHubSquatterTrap(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	sshdtest.RequireTools(t, "ss")
	v6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback, so sshd cannot bind [::1] and the trap cannot happen: %v", err)
	}
	v6.Close()

	squatter, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveBanner(t, squatter, "SSH-2.0-Squatter")
	port := squatter.Addr().(*net.TCPAddr).Port
	target, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveBanner(t, target, "SSH-2.0-ThroughTheTunnel")

	dir := t.TempDir()
	key := sshdtest.NewKey(t, dir, "id", "ed25519")
	line := fmt.Sprintf(`restrict,port-forwarding,permitlisten="localhost:%d",permitopen="255.255.255.255:9",command="/bin/false" %s`, port, key.PublicLine)
	hub := sshdtest.Start(t, sshdtest.Options{Name: "hub", AuthorizedKeys: []string{line}})
	kh := filepath.Join(dir, "known_hosts")
	hub.WriteKnownHosts(t, kh, "127.0.0.1")
	cfg := filepath.Join(dir, "rtunnel.yaml")
	data := fmt.Sprintf(`log: {format: json}
tunnels:
  - name: squatted
    server: root@127.0.0.1:%d
    identity: %s
    known_hosts: %s
    forwards: [{remote: "localhost:%d", local: "%s"}]
`, hub.Port, key.Private, kh, port, target.Addr())
	if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}

	// check --connect asks for the forward, gets it, and passes.
	out, err := exec.Command(daemontest.Binary(t), "check", "--connect", "--config", cfg).CombinedOutput()
	if err != nil {
		t.Errorf("check --connect: %v (it cannot see the squatter, so it should pass)\n%s", err, out)
	}

	d := daemontest.Start(t, []string{"up", "--config", cfg})
	d.WaitMsg(0, 20*time.Second, "forward up")
	hub.WaitLog(t, fmt.Sprintf("bind [127.0.0.1]:%d: Address already in use", port), 10*time.Second)

	if got := bannerAt(t, "127.0.0.1:"+strconv.Itoa(port)); got != "SSH-2.0-Squatter" {
		t.Errorf("127.0.0.1:%d answered %q, want the squatter", port, got)
	}
	if got := bannerAt(t, "[::1]:"+strconv.Itoa(port)); got != "SSH-2.0-ThroughTheTunnel" {
		t.Errorf("[::1]:%d answered %q, want the tunnel", port, got)
	}
	// ss shows both listeners: the squatter on 127.0.0.1, sshd on [::1] only.
	ss, err := exec.Command("ss", "-Hltnp", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v\n%s", err, ss)
	}
	var v4, v6sshd bool
	for _, l := range strings.Split(strings.TrimSpace(string(ss)), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		switch {
		case f[3] == "127.0.0.1:"+strconv.Itoa(port) && !strings.Contains(l, "sshd"):
			v4 = true
		case f[3] == "[::1]:"+strconv.Itoa(port) && strings.Contains(l, "sshd"):
			v6sshd = true
		}
	}
	if !v4 || !v6sshd {
		t.Errorf("ss -ltnp does not show the squatter on 127.0.0.1 and sshd on [::1] only:\n%s", ss)
	}
}
