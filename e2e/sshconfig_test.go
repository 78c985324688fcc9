package e2e

import (
	"fmt"
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

// A tunnel configured only through an ssh_config alias: server: names a
// Host whose HostName, Port, User, IdentityFile, UserKnownHostsFile,
// ServerAlive*, ExitOnForwardFailure and RemoteForward come from the file,
// reached through two ProxyJump hops (the second hop's own ProxyJump names
// the first, as in ssh). It connects to the real hub and forwards a login.
func TestSSHConfigAliasThroughTwoJumps(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	// Two bastions that only relay to the next hop, as the guide's jump line.
	bastion2 := sshdtest.Start(t, sshdtest.Options{Name: "bastion2",
		AuthorizedKeys: []string{guideLine("255.255.255.255:9", "127.0.0.1:"+strconv.Itoa(w.hub.Port), w.tunnelKey.PublicLine)}})
	bastion1 := sshdtest.Start(t, sshdtest.Options{Name: "bastion1",
		AuthorizedKeys: []string{guideLine("255.255.255.255:9", "127.0.0.1:"+strconv.Itoa(bastion2.Port), w.tunnelKey.PublicLine)}})
	kh := filepath.Join(w.dir, "all_known_hosts")
	var lines []string
	for _, s := range []*sshdtest.Server{w.hub, bastion1, bastion2} {
		lines = append(lines, s.KnownHostsLines("127.0.0.1")...)
	}
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sshConfig := filepath.Join(w.dir, "ssh_config")
	text := fmt.Sprintf(`# The hub, two bastions in front of it.
Host hub-alias
    HostName 127.0.0.1
    Port %d
    ProxyJump bastion-2
    ExitOnForwardFailure yes
    RemoteForward %d %s

Host bastion-2
    HostName 127.0.0.1
    Port %d
    ProxyJump bastion-1

Host bastion-1
    HostName 127.0.0.1
    Port %d

Host *
    User root
    IdentityFile %s
    UserKnownHostsFile %s
    ServerAliveInterval 1
    ServerAliveCountMax 3
    ConnectTimeout 5
`, w.hub.Port, w.tunnelPort, w.remote.Addr, bastion2.Port, bastion1.Port, w.tunnelKey.Private, kh)
	if err := os.WriteFile(sshConfig, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(w.dir, "alias.yaml")
	yaml := fmt.Sprintf(`log: {level: debug, format: json}
shutdown_grace: 2s
ssh_config: %s
tunnels:
  - name: via-alias
    server: hub-alias
    backoff: {initial: 200ms, max: 2s, multiplier: 2, jitter: 0.1, reset_after: 10s}
`, sshConfig)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	// rtunnel check shows what the alias resolved to, and where from.
	outb, err := exec.Command(daemontest.Binary(t), "check", "--config", cfg).CombinedOutput()
	out := string(outb)
	if err != nil {
		t.Fatalf("rtunnel check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"tunnel via-alias: server hub-alias resolved through " + sshConfig,
		fmt.Sprintf("root@127.0.0.1:%d", w.hub.Port),
		fmt.Sprintf("jump:                    root@127.0.0.1:%d", bastion1.Port),
		fmt.Sprintf("jump:                    root@127.0.0.1:%d", bastion2.Port),
		"keepalive.interval:      1s",
		sshConfig + ":6 ExitOnForwardFailure",
		"ok\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rtunnel check output lacks %q:\n%s", want, out)
		}
	}

	d := w.up(t, cfg)
	waitForwardUp(t, d, 0, 30*time.Second)
	e, _, _ := d.WaitMsg(0, time.Second, "connected")
	if via := fmt.Sprint(e["via"]); !strings.Contains(via, strconv.Itoa(bastion1.Port)) || !strings.Contains(via, strconv.Itoa(bastion2.Port)) {
		t.Errorf("connected line via=%v: want both bastions", e["via"])
	}
	w.echoLogin(t)
}

// ciphers: in OpenSSH syntax reaches the handshake: a hub that speaks only
// aes128-cbc (not in x/crypto's defaults) is refused without it and
// reached with "+aes128-cbc", as ssh -o Ciphers=+aes128-cbc would.
func TestCiphersReachTheHandshake(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{hubExtra: "Ciphers aes128-cbc"})
	check := func(extra string) (string, error) {
		cfg := w.config(t, [][2]string{w.sshForward()}, extra)
		out, err := exec.Command(daemontest.Binary(t), "check", "--connect", "--config", cfg).CombinedOutput()
		return string(out), err
	}
	out, err := check("")
	if err == nil || !strings.Contains(out, "cipher") {
		t.Errorf("without ciphers: check --connect passed or did not name the cipher mismatch (err %v):\n%s", err, out)
	}
	if out, err := check("    ciphers: +aes128-cbc\n"); err != nil {
		t.Errorf("with ciphers: +aes128-cbc: %v\n%s\nhub log:\n%s", err, out, w.hub.Log())
	}
	out, err = check("    ciphers: +aes128-cbc,no-such-cipher\n")
	if err == nil || !strings.Contains(out, `tunnels[hub].ciphers: "no-such-cipher" is not supported; supported: `) {
		t.Errorf("an unknown cipher: err %v, output:\n%s", err, out)
	}
}
