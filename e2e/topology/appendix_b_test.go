package topology

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// The guide's Appendix B (vpn hub): three remotes each keep localhost:222N
// on the vpn; the master, with no tunnel of its own, reaches each with
// ssh -J through the vpn, and with the Host blocks `rtunnel ssh-config`
// prints.
func TestAppendixB(t *testing.T) {
	t.Parallel()
	const n = 3
	w := newWorld(t, "vpn", "master", "remote-1", "remote-2", "remote-3")
	vpnIP := w.ip("vpn")
	masterKey := w.key("id_master")
	keys := make([]sshdtest.Key, n+1)
	authorized := []string{}
	var ports []string
	for i := 1; i <= n; i++ {
		keys[i] = w.key(fmt.Sprintf("id_remote_%d", i))
		authorized = append(authorized, w.authorizedKey("b-remote", strconv.Itoa(2220+i), keys[i]))
		ports = append(ports, strconv.Itoa(2220+i))
	}
	authorized = append(authorized, w.authorizedKey("b-master", strings.Join(ports, ","), masterKey))
	vpn := w.sshd("vpn", true, "", authorized...)

	// The snippet is in force on the hub.
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd" // a non-login PATH often lacks sbin
	}
	effective, err := exec.CommandContext(ctx, sshd, "-T", "-f", vpn.ConfigPath()).Output()
	if err != nil {
		t.Fatalf("sshd -T: %v", err)
	}
	for _, want := range []string{"gatewayports no", "allowtcpforwarding yes", "clientaliveinterval 15", "clientalivecountmax 3", "maxstartups 100:30:1000"} {
		if !strings.Contains(string(effective), "\n"+want+"\n") {
			t.Errorf("vpn sshd -T lacks %q: the hub snippet is not in force", want)
		}
	}

	remotes := make([]*sshdtest.Server, n+1)
	daemons := make([]*daemontest.Daemon, n+1)
	cfgs := make([]string, n+1)
	vpnKH := hostKey{vpnIP, 22, vpn}
	khEntries := []hostKey{vpnKH}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("remote-%d", i)
		remotes[i] = w.sshd(name, false, "", masterKey.PublicLine)
		cfgs[i] = w.config(name+".yaml", tunnelSpec{name: name, server: "root@" + vpnIP + ":22", key: keys[i],
			kh:       w.knownHosts("kh_"+name, vpnKH),
			forwards: [][2]string{{"localhost:" + strconv.Itoa(2220+i), "localhost:22"}}})
		daemons[i] = w.up(name, cfgs[i])
		khEntries = append(khEntries, hostKey{"localhost", 2220 + i, remotes[i]})
	}
	for i := 1; i <= n; i++ {
		daemons[i].WaitMsg(0, upTimeout, "forward up")
	}
	masterKH := w.knownHosts("kh_master", khEntries...)
	// ssh -J passes -F on to the jump's ssh, not -o: the options go in a file.
	plain := w.clientConfig("ssh_config", "", masterKey, masterKH)

	for i := 1; i <= n; i++ {
		out, err := w.sshF("master", plain, "-J", "root@"+vpnIP, "-p", strconv.Itoa(2220+i), "root@localhost", whereAmI)
		if err != nil {
			t.Fatalf("ssh -J root@vpn -p %d root@localhost: %v", 2220+i, err)
		}
		w.wantLanded(out, fmt.Sprintf("remote-%d", i))
		if i == 1 {
			t.Logf("master$ ssh -J root@%s -p 2221 root@localhost '%s'\n%s", vpnIP, whereAmI, out)
		}
	}

	// rtunnel ssh-config turns the remotes' configs into the guide's Host blocks.
	blocks, err := w.rtunnel("master", "ssh-config", "--config", cfgs[1], "--config", cfgs[2], "--config", cfgs[3], "--user", "root", "--jump-user", "root")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(blocks, "Host vpn-jump\n    HostName "+vpnIP+"\n    Port 22\n    User root\n") {
		t.Errorf("ssh-config has no vpn-jump block:\n%s", blocks)
	}
	generated := w.clientConfig("ssh_config_generated", blocks, masterKey, masterKH)
	for i := 1; i <= n; i++ {
		out, err := w.sshF("master", generated, fmt.Sprintf("remote-%d", i), whereAmI)
		if err != nil {
			t.Fatalf("ssh -F (rtunnel ssh-config) remote-%d: %v\n%s", i, err, blocks)
		}
		w.wantLanded(out, fmt.Sprintf("remote-%d", i))
	}
	t.Logf("rtunnel ssh-config:\n%s", blocks)

	// remote-1's key cannot take remote-2's port: refused, logged, and
	// nothing else disturbed.
	from2 := daemons[2].Mark()
	rogue := w.up("remote-1", w.config("rogue.yaml", tunnelSpec{name: "rogue", server: "root@" + vpnIP + ":22", key: keys[1],
		kh: w.knownHosts("kh_rogue", vpnKH), forwards: [][2]string{{"localhost:2222", "localhost:22"}}}))
	e, _, _ := rogue.WaitMsg(0, upTimeout, "forward refused; closing the session (exit_on_forward_failure)")
	if !strings.Contains(e.Str("err"), "permitlisten") {
		t.Errorf("the refusal log does not point at permitlisten: %s", e.Str("err"))
	}
	vpn.WaitLog(t, "remote forward to host localhost port 2222, but the request was denied", 10*time.Second)
	out, err := w.sshF("master", generated, "remote-2", whereAmI)
	if err != nil {
		t.Fatalf("remote-2 after remote-1's attempt: %v", err)
	}
	w.wantLanded(out, "remote-2")
	for i := 1; i <= n; i++ {
		if c := countMsg(daemons[i], 0, "tunnel down; will retry"); c != 0 {
			t.Errorf("remote-%d's tunnel went down %d times", i, c)
		}
	}
	if c := countMsg(daemons[2], from2, "connected"); c != 0 {
		t.Errorf("remote-2 reconnected while remote-1 tried its port")
	}

	// The master's key may open only the 222X ports through the vpn: not
	// the vpn's own sshd, and it may not listen there.
	if _, err := w.sshF("master", plain, "-J", "root@"+vpnIP, "-p", "22", "root@localhost", "true"); err == nil ||
		!strings.Contains(err.Error(), "administratively prohibited") {
		t.Errorf("ssh -J to the vpn's localhost:22 with the master's key: %v, want administratively prohibited", err)
	}
	if _, err := w.sshF("master", plain, "-N", "-o", "ExitOnForwardFailure=yes", "-R", "localhost:2229:localhost:22", "root@"+vpnIP); err == nil ||
		!strings.Contains(err.Error(), "remote port forwarding failed") {
		t.Errorf("ssh -R with the master's key on the vpn: %v, want remote port forwarding failed", err)
	}
}
