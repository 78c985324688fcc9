package topology

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// checkConnect runs `rtunnel check --connect` in the remote's namespace and
// returns its stdout and exit status.
func (a *appendixA) checkConnect(t *testing.T, cfg string) (string, int) {
	t.Helper()
	out, err := a.rtunnel("remote", "check", "--connect", "--config", cfg)
	t.Logf("remote$ rtunnel check --connect:\n%s", out)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	}
	t.Fatal(err)
	return "", 0
}

func wantAll(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

// Appendix A's jump chain, and what `check --connect` and `up` say when
// each piece of it is wrong.
func TestJumpChainFailures(t *testing.T) {
	t.Parallel()
	a := newAppendixA(t)
	master := a.up("master", a.masterCfg)
	master.WaitMsg(0, upTimeout, "forward up")
	vpnHop := "root@" + a.ip("vpn") + ":22"
	server := "root@localhost:2210"
	vpnLines := func(remoteLine string) []string {
		return []string{a.authorizedKey("a-master", "2210", a.masterKey), remoteLine}
	}
	goodVPN := vpnLines(a.authorizedKey("a-remote-vpn", "2210", a.remoteKey))
	goodMaster := []string{a.authorizedKey("a-remote-master", "2220", a.remoteKey)}
	restore := func() {
		a.vpn.SetAuthorizedKeys(t, goodVPN)
		a.master.SetAuthorizedKeys(t, goodMaster)
	}

	t.Run("check passes through the chain", func(t *testing.T) {
		out, code := a.checkConnect(t, a.remoteCfg)
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		wantAll(t, out,
			"tunnel master: "+server+" via "+vpnHop+"\n",
			"  ok    connect "+vpnHop+": TCP connection to "+a.ip("vpn")+":22\n",
			"  ok    host key "+vpnHop+": ssh-ed25519 ",
			"under the name "+a.ip("vpn")+"\n",
			"  ok    auth "+vpnHop+": key "+a.remoteKey.Fingerprint+" (",
			") accepted for user root\n",
			"  ok    connect "+server+": direct-tcpip channel to localhost:2210 through "+vpnHop+"\n",
			"  ok    host key "+server+": ssh-ed25519 ",
			"under the name [localhost]:2210\n",
			"  ok    auth "+server+": key "+a.remoteKey.Fingerprint+" (",
			"  ok    forward localhost:2220: "+server+" allowed it (requested, then cancelled)\n",
			"  ok    local target localhost:22: accepts TCP connections",
			"connect: all 8 steps passed\n")
	})

	t.Run("a hop with its own key and known_hosts", func(t *testing.T) {
		defer restore()
		hopKey := a.key("id_remote_hop")
		a.vpn.SetAuthorizedKeys(t, vpnLines(a.authorizedKey("a-remote-vpn", "2210", hopKey)))
		hopKH := a.knownHosts("kh_hop_only", hostKey{a.ip("vpn"), 22, a.vpn})
		serverKH := a.knownHosts("kh_server_only", hostKey{"localhost", 2210, a.master})
		cfg := a.config("remote-hopmap.yaml", tunnelSpec{name: "master", server: server,
			jump:     []string{"{server: " + vpnHop + ", identity: " + hopKey.Private + ", known_hosts: " + hopKH + ", connect_timeout: 3s}"},
			key:      a.remoteKey,
			kh:       serverKH,
			forwards: [][2]string{{"localhost:2220", "localhost:22"}}})
		out, code := a.checkConnect(t, cfg)
		if code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
		wantAll(t, out,
			"matches "+hopKH+" under the name "+a.ip("vpn")+"\n",
			"  ok    auth "+vpnHop+": key "+hopKey.Fingerprint+" ("+hopKey.Private+") accepted",
			"matches "+serverKH+" under the name [localhost]:2210\n",
			"  ok    auth "+server+": key "+a.remoteKey.Fingerprint+" ("+a.remoteKey.Private+") accepted",
			"connect: all 8 steps passed\n")
	})

	t.Run("the hop rejects the key", func(t *testing.T) {
		defer restore()
		// permitlisten="none" is the guide's trap: sshd drops the whole key.
		a.vpn.SetAuthorizedKeys(t, vpnLines(`restrict,port-forwarding,permitopen="localhost:2210",permitlisten="none",command="/bin/false" `+a.remoteKey.PublicLine))
		out, code := a.checkConnect(t, a.remoteCfg)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantAll(t, out,
			"  FAIL  auth "+vpnHop+": "+a.ip("vpn")+":22 refused key "+a.remoteKey.Fingerprint+" (",
			"fix: compare the fingerprints with `ssh-keygen -l -f ~root/.ssh/authorized_keys` on "+a.ip("vpn"))
		if strings.Contains(out, "connect "+server) {
			t.Errorf("went on past a failed hop")
		}
	})

	t.Run("the hop's permitopen does not name the next hop", func(t *testing.T) {
		defer restore()
		a.vpn.SetAuthorizedKeys(t, vpnLines(a.authorizedKey("a-remote-vpn", "2211", a.remoteKey)))
		out, code := a.checkConnect(t, a.remoteCfg)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantAll(t, out,
			"  ok    auth "+vpnHop,
			"  FAIL  connect "+server+": cannot reach "+server+" through "+vpnHop+": ssh: rejected: administratively prohibited",
			"fix: the key's permitopen on "+vpnHop+" must allow localhost:2210")
	})

	t.Run("the server refuses the forward", func(t *testing.T) {
		defer restore()
		a.master.SetAuthorizedKeys(t, []string{a.authorizedKey("a-remote-master", "2221", a.remoteKey)})
		out, code := a.checkConnect(t, a.remoteCfg)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantAll(t, out,
			"  ok    auth "+server,
			"  FAIL  forward localhost:2220: "+server+" refused tcpip-forward localhost:2220; port forwarding itself is on for this key",
			"fix: the hub refused the port: it is held, or permitlisten does not allow it")
	})

	t.Run("permitlisten without port-forwarding on the server", func(t *testing.T) {
		defer restore()
		a.master.SetAuthorizedKeys(t, []string{`restrict,permitlisten="localhost:2220",permitopen="255.255.255.255:9",command="/bin/false" ` + a.remoteKey.PublicLine})
		out, code := a.checkConnect(t, a.remoteCfg)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantAll(t, out,
			"  FAIL  forward localhost:2220: "+server+" refused tcpip-forward localhost:2220; a direct-tcpip open of 255.255.255.255:9 was refused too",
			"fix: permitlisten needs port-forwarding")
	})

	t.Run("local target refused", func(t *testing.T) {
		cfg := a.config("remote-dead-target.yaml", tunnelSpec{name: "master", server: server, jump: []string{vpnHop},
			key: a.remoteKey, kh: a.knownHosts("kh_remote2", hostKey{a.ip("vpn"), 22, a.vpn}, hostKey{"localhost", 2210, a.master}),
			forwards: [][2]string{{"localhost:2220", "localhost:2999"}}})
		out, code := a.checkConnect(t, cfg)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantAll(t, out,
			"  ok    forward localhost:2220",
			"  FAIL  local target localhost:2999: local target refused: dial tcp ",
			"connect: 1 of 8 steps failed\n")
	})

	// up: an unknown or changed host key on any hop is permanent (exit 78)
	// and the message names the hop.
	upCases := []struct {
		name string
		kh   []hostKey
		want []string
	}{
		{"unknown vpn key", []hostKey{{"localhost", 2210, a.master}},
			[]string{"has no key for " + a.ip("vpn") + " (hop " + vpnHop + ")"}},
		{"changed vpn key", []hostKey{{a.ip("vpn"), 22, a.remote}, {"localhost", 2210, a.master}},
			[]string{"HOST KEY FOR " + vpnHop + " HAS CHANGED"}},
		{"changed key behind the jump", []hostKey{{a.ip("vpn"), 22, a.vpn}, {"localhost", 2210, a.vpn}},
			[]string{"HOST KEY FOR " + server + " HAS CHANGED", "ssh-keygen -R [localhost]:2210"}},
	}
	for i, c := range upCases {
		t.Run("up: "+c.name, func(t *testing.T) {
			cfg := a.config("hk"+string(rune('a'+i))+".yaml", tunnelSpec{name: "master", server: server, jump: []string{vpnHop},
				key: a.remoteKey, kh: a.knownHosts("kh_hk"+string(rune('a'+i)), c.kh...),
				forwards: [][2]string{{"localhost:2220", "localhost:22"}}})
			d := a.up("remote", cfg)
			code, ok := d.Wait(20 * time.Second)
			if !ok {
				t.Fatal("rtunnel up still runs; want exit 78")
			}
			if code != 78 {
				t.Errorf("exit %d, want 78", code)
			}
			wantAll(t, d.Raw(), c.want...)
		})
	}
}
