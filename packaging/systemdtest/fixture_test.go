package systemdtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Ports inside the container (its own network namespace: only loopback).
const (
	hubPort    = 2200 // the hub's sshd, which rtunnel logs in to
	targetPort = 2202 // the "local sshd" that forwarded connections reach
	deadPort   = 2299 // nothing listens: every dial is refused
	hubForward = 2201 // the forward of the tunnel named hub
)

// The test's own files inside the container.
const testDir = "/etc/rtunnel-test"

// writeFile writes content to path inside the container (through
// /proc/PID/root) and sets its mode and owner from inside, where the
// rtunnel user exists.
func (c *container) writeFile(t *testing.T, path string, mode os.FileMode, owner, content string) {
	t.Helper()
	host := filepath.Join(c.root, path)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(host, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	c.sh(t, fmt.Sprintf("chown %s %s && chmod %o %s", owner, path, mode, path))
}

// keygen makes an ed25519 key pair in dir on the host and returns the
// public key line.
func keygen(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", filepath.Base(path), "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", path, err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pub))
}

// sshdConfig is a hub or target sshd listening on 127.0.0.1:port.
func sshdConfig(name string, port int, extra string) string {
	return fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s/%s_host_ed25519
AuthorizedKeysFile %s/%s_authorized_keys
PidFile none
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
X11Forwarding no
LogLevel VERBOSE
%s`, port, testDir, name, testDir, name, extra)
}

// sshdUnit runs one of the test's sshds under the container's systemd.
func sshdUnit(name string) string {
	return fmt.Sprintf(`[Unit]
Description=rtunnel test %s sshd
[Service]
ExecStart=/usr/sbin/sshd -D -e -f %s/%s_sshd_config
`, name, testDir, name)
}

// prepareRoot writes, before boot, everything that needs no user of the
// container into root (the overlay's upper layer): keys, the two sshds and
// their units, the package.
func prepareRoot(t *testing.T, root, deb string) {
	t.Helper()
	dir := filepath.Join(root, testDir)
	clientPub := keygen(t, filepath.Join(root, "etc/rtunnel/id_ed25519"))
	opPub := keygen(t, filepath.Join(dir, "op_key"))
	hubHostPub := keygen(t, filepath.Join(dir, "hub_host_ed25519"))
	keygen(t, filepath.Join(dir, "target_host_ed25519"))
	otherHostPub := keygen(t, filepath.Join(dir, "impostor_host_ed25519"))
	hostKey := func(pub string) string { // "ssh-ed25519 AAAA..."
		f := strings.Fields(pub)
		return f[0] + " " + f[1]
	}
	files := map[string]string{
		// The tunnel user may only ask for remote forwards.
		"hub_sshd_config":        sshdConfig("hub", hubPort, "AllowTcpForwarding remote\nGatewayPorts no\nPermitTTY no\nClientAliveInterval 5\nClientAliveCountMax 3\nMaxStartups 100:30:200\n"),
		"hub_authorized_keys":    `restrict,port-forwarding ` + clientPub + "\n",
		"target_sshd_config":     sshdConfig("target", targetPort, "AllowTcpForwarding no\n"),
		"target_authorized_keys": opPub + "\n",
		// deadPort too: a tunnel with no host key for its server is refused at start.
		"known_hosts": fmt.Sprintf("[127.0.0.1]:%d %s\n[127.0.0.1]:%d %s\n",
			hubPort, hostKey(hubHostPub), deadPort, hostKey(hubHostPub)),
		"impostor_known_hosts": fmt.Sprintf("[127.0.0.1]:%d %s\n", hubPort, hostKey(otherHostPub)),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	units := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(units, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hub", "target"} {
		unit := filepath.Join(units, "rt-"+name+".service")
		if err := os.WriteFile(unit, []byte(sshdUnit(name)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rtunnel.deb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setupInside installs the package and starts the sshds, once the
// container runs.
func setupInside(t *testing.T, c *container) {
	t.Helper()
	c.sh(t, `set -e
dpkg -i `+testDir+`/rtunnel.deb >/var/log/rtunnel-dpkg.log 2>&1 || { cat /var/log/rtunnel-dpkg.log; exit 1; }
# UsePAM no: sshd refuses a locked account ("!" in shadow); "*" is no password, not locked.
useradd --system --password "*" --shell /usr/sbin/nologin tunnel
useradd --system --password "*" --create-home --shell /bin/sh op
cd `+testDir+`
chmod 600 hub_host_ed25519 target_host_ed25519 impostor_host_ed25519 op_key
chown rtunnel:rtunnel /etc/rtunnel/id_ed25519 && chmod 600 /etc/rtunnel/id_ed25519
install -m 0640 -o root -g rtunnel known_hosts /etc/rtunnel/known_hosts
systemctl daemon-reload
systemctl start rt-hub rt-target
# The units are Type=simple: start returns before sshd listens. Wait (10 s at
# most) so that a step that silences the hub finds it listening.
for _ in $(seq 100); do
	ss -Hltn "sport = :`+strconv.Itoa(hubPort)+`" | grep -q . && ss -Hltn "sport = :`+strconv.Itoa(targetPort)+`" | grep -q . && exit 0
	sleep 0.1
done
echo "the hub or target sshd does not listen after 10 s" >&2
exit 1`)
}

// tunnelSpec is one entry of a generated rtunnel config.
type tunnelSpec struct {
	name       string
	port       int    // the server's port: hubPort, or deadPort to fail
	remote     int    // the forwarded port on the hub
	keepalive  string // keepalive interval; changing it restarts the tunnel
	backoffMax string
}

// rtunnelConfig renders a config in the format of packaging/rtunnel.example.yaml.
func rtunnelConfig(grace string, metricsPort int, tunnels []tunnelSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "shutdown_grace: %s\n", grace)
	if metricsPort != 0 {
		fmt.Fprintf(&b, "metrics:\n  listen: 127.0.0.1:%d\n", metricsPort)
	}
	b.WriteString("tunnels:\n")
	for _, tn := range tunnels {
		keepalive, backoffMax := tn.keepalive, tn.backoffMax
		if keepalive == "" {
			keepalive = "10s"
		}
		if backoffMax == "" {
			backoffMax = "2s"
		}
		fmt.Fprintf(&b, `  - name: %s
    server: tunnel@127.0.0.1:%d
    identity: /etc/rtunnel/id_ed25519
    known_hosts: /etc/rtunnel/known_hosts
    forwards:
      - remote: localhost:%d
        local: 127.0.0.1:%d
    keepalive:
      interval: %s
      count_max: 3
    connect_timeout: 20s
    backoff:
      initial: 1s
      max: %s
`, tn.name, tn.port, tn.remote, targetPort, keepalive, backoffMax)
	}
	return b.String()
}

// writeConfig installs an rtunnel config with the package's owner and mode.
func (c *container) writeConfig(t *testing.T, name, content string) {
	t.Helper()
	c.writeFile(t, "/etc/rtunnel/"+name+".yaml", 0o640, "root:rtunnel", content)
}

// sshThrough runs a command on the target sshd through the hub's forwarded
// port, as an operator would, and returns its output and exit status.
func (c *container) sshThrough(t *testing.T, port int, command string) (string, int) {
	t.Helper()
	return c.shStatus(t, 40*time.Second, sshCommand(port, command))
}

func sshCommand(port int, command string) string {
	return fmt.Sprintf("ssh -n -i %s/op_key -p %d -o BatchMode=yes -o StrictHostKeyChecking=no "+
		"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=15 op@127.0.0.1 '%s'",
		testDir, port, command)
}

// openConn starts a forwarded ssh connection that stays open, as a
// transient unit of the container's systemd (so it dies with the container),
// and waits until it is through.
func (c *container) openConn(t *testing.T, unit string, port int) {
	t.Helper()
	c.sh(t, fmt.Sprintf("systemd-run --quiet --unit=%s --property=Type=exec %s", unit,
		sshCommand(port, "echo connection-open; exec sleep 600")))
	// The line ssh printed, not systemd's "Started ..." that quotes the command.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.journalSince(t, "", "-u "+unit+" _COMM=ssh"), "connection-open\n") {
		if time.Now().After(deadline) {
			t.Fatalf("connection %s through port %d did not open within 20s", unit, port)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
