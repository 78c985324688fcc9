package topology

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// A forward's target need not be the remote's own sshd: as `ssh -R
// 2220:10.0.0.50:22`, `local:` is any host:port the remote can reach. Here
// the target is the sshd of a machine on the remote's LAN that only the
// remote may reach (its firewall resets everyone else).
func TestLANTarget(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "vpn", "remote", "lan")
	remoteKey := w.key("id_remote_tunnel")
	adminKey := w.key("id_admin")
	vpn := w.sshd("vpn", true, "", w.authorizedKey("b-remote", "2225", remoteKey))
	lan := w.sshd("lan", false, "", adminKey.PublicLine)

	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	fw := w.host("lan").Command(ctx, "nft", "-f", "-")
	fw.Stdin = strings.NewReader(fmt.Sprintf(`table inet lan_only {
	chain in { type filter hook input priority 0; policy accept; tcp dport 22 ip saddr != %s reject with tcp reset; }
}
`, w.ip("remote")))
	if out, err := fw.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}

	target := w.ip("lan") + ":22"
	d := w.up("remote", w.config("remote.yaml", tunnelSpec{name: "vpn", server: "root@" + w.ip("vpn") + ":22", key: remoteKey,
		kh:       w.knownHosts("kh_remote", hostKey{w.ip("vpn"), 22, vpn}),
		forwards: [][2]string{{"localhost:2225", target}}}))
	d.WaitMsg(0, upTimeout, "forward up")

	// From the vpn the LAN host is out of reach, except through the tunnel.
	adminKH := w.knownHosts("kh_admin", hostKey{w.ip("lan"), 22, lan}, hostKey{"localhost", 2225, lan})
	if _, err := w.ssh("vpn", adminKey, adminKH, "root@"+w.ip("lan"), "true"); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Fatalf("ssh from the vpn straight to the LAN host: %v; want the firewall's Connection refused", err)
	}
	out, err := w.ssh("vpn", adminKey, adminKH, "-p", "2225", "root@localhost", whereAmI)
	if err != nil {
		t.Fatalf("ssh -p 2225 root@localhost on the vpn: %v", err)
	}
	w.wantLanded(out, "lan")
	t.Logf("vpn$ ssh -p 2225 root@localhost (forward localhost:2225 -> %s on the remote's LAN):\n%s", target, out)
}
