package packaging

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// directWorld is the setup guide's Direct topology on loopback, for the
// release binaries: a hub sshd that takes the tunnel key with the guide's
// locked-down line, a second sshd standing for the remote's own, and a
// config that forwards the hub's localhost:tunnelPort to it, with the
// metrics endpoint on, as the example config has it.
type directWorld struct {
	dir, config, masterKH string
	masterKey             sshdtest.Key
	tunnelPort            int
}

func newDirectWorld(t *testing.T) *directWorld {
	t.Helper()
	sshdtest.Require(t)
	w := &directWorld{dir: t.TempDir()}
	tunnelKey := sshdtest.NewKey(t, w.dir, "id_tunnel", "ed25519")
	w.masterKey = sshdtest.NewKey(t, w.dir, "id_master", "ed25519")
	w.tunnelPort = sshdtest.FreePort(t)
	line := fmt.Sprintf(`restrict,port-forwarding,permitlisten="localhost:%d",permitopen="255.255.255.255:9",command="/bin/false" %s`,
		w.tunnelPort, tunnelKey.PublicLine)
	hub := sshdtest.Start(t, sshdtest.Options{Name: "hub", AuthorizedKeys: []string{line}})
	remote := sshdtest.Start(t, sshdtest.Options{Name: "remote", AuthorizedKeys: []string{w.masterKey.PublicLine}})
	knownHosts := filepath.Join(w.dir, "known_hosts")
	hub.WriteKnownHosts(t, knownHosts, "127.0.0.1")
	var masterKH strings.Builder
	for _, l := range remote.KnownHostsLines("localhost") {
		f := strings.Fields(l)
		fmt.Fprintf(&masterKH, "[localhost]:%d %s %s\n", w.tunnelPort, f[1], f[2])
	}
	w.masterKH = filepath.Join(w.dir, "master_known_hosts")
	writeFile(t, w.masterKH, masterKH.String())

	w.config = filepath.Join(w.dir, "rtunnel.yaml")
	writeFile(t, w.config, fmt.Sprintf(`log: {level: debug, format: json}
shutdown_grace: 2s
metrics: {listen: "127.0.0.1:%d"}
tunnels:
  - name: hub
    server: root@127.0.0.1:%d
    identity: %s
    known_hosts: %s
    connect_timeout: 10s
    keepalive: {interval: 2s, count_max: 5}
    forwards:
      - remote: localhost:%d
        local: %s
`, sshdtest.FreePort(t), hub.Port, tunnelKey.Private, knownHosts, w.tunnelPort, remote.Addr))
	return w
}

// login runs a command on the remote through the tunnel, as the hub's
// operator would (ssh -p tunnelPort root@localhost), and checks its output.
func (w *directWorld) login(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := sshdtest.SSHCommand(ctx, w.masterKey, w.masterKH,
		"-p", strconv.Itoa(w.tunnelPort), "root@localhost", "echo through-the-tunnel $((6*7))")
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "through-the-tunnel 42\n" {
		t.Fatalf("ssh through the tunnel: %v, %q", err, out)
	}
}
