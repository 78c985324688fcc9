package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/config"
)

// importParsed runs import-autossh and parses what it printed as rtunnel
// would: the printed config must be one `rtunnel check` accepts.
func importParsed(t *testing.T, args ...string) (string, *config.Config) {
	t.Helper()
	code, out, errOut := runCmd(t, append([]string{"import-autossh"}, args...)...)
	if code != 0 {
		t.Fatalf("import-autossh %q: exit %d: %s", args, code, errOut)
	}
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "rtunnel.yaml"), []byte(out))
	if err != nil {
		t.Fatalf("import-autossh %q printed a config that does not parse:\n%s\n%v", args, out, err)
	}
	return out, cfg
}

// The guide's own lines (docs/TOPOLOGIES.md): Direct and Appendix A.
func TestImportAutosshGuideLines(t *testing.T) {
	out, cfg := importParsed(t, "--", "autossh", "-M", "0", "-fN", "-R", "2220:localhost:22",
		"remoteuser@203.0.113.50", "-p", "2222", "-o", "ServerAliveInterval=120")
	tun := cfg.Tunnels[0]
	if got := tun.Server.String(); got != "remoteuser@203.0.113.50:2222" {
		t.Errorf("server %s", got)
	}
	if tun.Keepalive.Interval.Seconds() != 120 || tun.Keepalive.CountMax != 3 {
		t.Errorf("keepalive %+v, want 120s x 3 (ssh's ServerAliveCountMax default)", tun.Keepalive)
	}
	if len(tun.Forwards) != 1 || tun.Forwards[0].String() != "localhost:2220->localhost:22" {
		t.Errorf("forwards %v", tun.Forwards)
	}
	if tun.ExitOnForwardFailure {
		t.Error("exit_on_forward_failure: true, but the command line left ssh's default (no)")
	}
	for _, note := range []string{"# - -M 0: autossh's monitor port was off", "# - -f (background)"} {
		if !strings.Contains(out, note) {
			t.Errorf("output lacks %q:\n%s", note, out)
		}
	}

	// Appendix A, the remote: through the vpn to the master's tunnel port.
	_, cfg = importParsed(t, "--", "autossh", "-M", "0", "-fN", "-J", "vpnuser@198.51.100.7:2200",
		"-R", "2220:localhost:22", "admin@localhost", "-p", "2210", "-o", "ServerAliveInterval=120")
	tun = cfg.Tunnels[0]
	if got := tun.Server.String(); got != "admin@localhost:2210" {
		t.Errorf("server %s", got)
	}
	if len(tun.Jump) != 1 || tun.Jump[0].String() != "vpnuser@198.51.100.7:2200" {
		t.Errorf("jump %v", tun.Jump)
	}
}

// Real-world autossh invocations, as found in units and READMEs.
func TestImportAutosshTable(t *testing.T) {
	home := t.TempDir()
	cases := []struct {
		args                        []string
		server, forwards, jumps     string
		locals                      string
		identity, knownHosts, notes string
		trust                       string // certificate, agent, host key alias, accept-new, hash
		eoff                        bool
	}{
		{args: []string{"autossh", "-M", "20000", "-N", "-R", "0.0.0.0:8022:127.0.0.1:22", "-i", "/etc/tunnel/id_rsa", "tun@hub.example.com"},
			server: "tun@hub.example.com:22", forwards: "0.0.0.0:8022->127.0.0.1:22", identity: "/etc/tunnel/id_rsa", notes: "-M 20000: autossh's monitor port loop is replaced"},
		{args: []string{"/usr/bin/autossh", "-M0", "-NT", "-oServerAliveInterval=30", "-oServerAliveCountMax=3", "-oExitOnForwardFailure=yes", "-R2222:localhost:22", "-R", "8080:192.168.1.10:80", "pi@vps.example.org"},
			server: "pi@vps.example.org:22", forwards: "localhost:2222->localhost:22 localhost:8080->192.168.1.10:80", eoff: true},
		{args: []string{"ssh", "-N", "-R", "[::1]:2220:[::1]:22", "-p", "443", "-l", "edge", "-o", "UserKnownHostsFile=/etc/rtunnel/known_hosts", "-o", "ConnectTimeout=1m", "hub"},
			server: "edge@hub:443", forwards: "[::1]:2220->[::1]:22", knownHosts: "/etc/rtunnel/known_hosts"},
		{args: []string{"autossh", "-M", "0", "-f", "-N", "-q", "-C", "-J", "jump1@a.example:2201,b.example", "-R", "*:2220:localhost:22", "ssh://ops@target.example:2022"},
			server: "ops@target.example:2022", forwards: "0.0.0.0:2220->localhost:22", jumps: "jump1@a.example:2201 root-or-me@b.example:22", notes: "-C (compression)"},
		{args: []string{"/usr/bin/env", "AUTOSSH_GATETIME=0", "AUTOSSH_POLL=30", "autossh", "-M", "0", "-N", "-R", "2220:localhost:22", "u@h"},
			server: "u@h:22", forwards: "localhost:2220->localhost:22", notes: "AUTOSSH_GATETIME=0: rtunnel has no gate time"},
		{args: []string{"autossh", "-M", "0", "-N", "-o", "IdentityFile=~/.ssh/tunnel_key", "-o", "StrictHostKeyChecking=yes", "-o", "RemoteForward 2221 localhost:22", "u@h"},
			server: "u@h:22", forwards: "localhost:2221->localhost:22", identity: home + "/.ssh/tunnel_key"},
		// Socket paths, port 0 and -L map as they are.
		{args: []string{"autossh", "-M", "0", "-N", "-R", "/run/hub/remote-7.sock:localhost:22", "-R", "0:localhost:8080", "-R", "2223:/run/app.sock", "u@h"},
			server: "u@h:22", forwards: "/run/hub/remote-7.sock->localhost:22 localhost:0->localhost:8080 localhost:2223->/run/app.sock",
			notes: "-R 0:localhost:8080: the hub picks the port"},
		{args: []string{"autossh", "-M", "0", "-N", "-L", "15432:db.internal:5432", "-L", "127.0.0.1:15433:[::1]:5432", "-o", "LocalForward=/run/db.sock /run/hub/db.sock", "u@h"},
			server: "u@h:22", locals: "localhost:15432->db.internal:5432 127.0.0.1:15433->[::1]:5432 /run/db.sock->/run/hub/db.sock"},
		// Several keys, a certificate, an alias and accept-new, hashed.
		{args: []string{"autossh", "-M", "0", "-N", "-i", "/etc/rtunnel/id_ed25519", "-i", "/etc/rtunnel/id_rsa", "-i", "/etc/rtunnel/id_ed25519",
			"-o", "CertificateFile=/etc/rtunnel/id_ed25519-cert.pub", "-o", "IdentitiesOnly=yes", "-o", "HostKeyAlias=hub-key",
			"-o", "StrictHostKeyChecking=accept-new", "-o", "HashKnownHosts=yes", "-o", "UserKnownHostsFile=/var/lib/rtunnel/known_hosts",
			"-R", "2220:localhost:22", "tunnel@hub.example.net"},
			server: "tunnel@hub.example.net:22", forwards: "localhost:2220->localhost:22", identity: "/etc/rtunnel/id_ed25519,/etc/rtunnel/id_rsa",
			knownHosts: "/var/lib/rtunnel/known_hosts", trust: "cert=/etc/rtunnel/id_ed25519-cert.pub agent= alias=hub-key acceptnew=true hash=true"},
		// The agent alone: no default key is written (it would restrict the agent to that key).
		{args: []string{"autossh", "-M", "0", "-N", "-o", "IdentityAgent=SSH_AUTH_SOCK", "-R", "2220:localhost:22", "u@h"},
			server: "u@h:22", forwards: "localhost:2220->localhost:22", knownHosts: home + "/.ssh/known_hosts",
			trust: "cert= agent=SSH_AUTH_SOCK alias= acceptnew=false hash=false", notes: "give the service the variable (Environment=SSH_AUTH_SOCK="},
		{args: []string{"autossh", "-M", "0", "-N", "-o", "IdentityAgent ~/.ssh/agent.sock", "-i", "~/.ssh/id_ed25519.pub", "-R", "2220:localhost:22", "u@h"},
			server: "u@h:22", forwards: "localhost:2220->localhost:22", identity: home + "/.ssh/id_ed25519.pub",
			trust: "cert= agent=" + home + "/.ssh/agent.sock alias= acceptnew=false hash=false", notes: "ssh also offered every other key of the agent"},
		{args: []string{"autossh", "-M", "0", "-N", "-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=ask", "-o", "HashKnownHosts=yes", "-R", "2220:localhost:22", "u@h"},
			server: "u@h:22", forwards: "localhost:2220->localhost:22", trust: "cert= agent= alias= acceptnew=false hash=true",
			notes: "rtunnel writes to known_hosts only with strict_host_key_checking: accept-new"},
	}
	for _, c := range cases {
		in := autosshInvocation{argv: c.args, env: map[string]string{}, source: "command line", runAs: account{name: "root-or-me", home: home}}
		out, err := importAutossh(in, "")
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		cfg, err := config.Parse("imported.yaml", []byte(out))
		if err != nil {
			t.Errorf("%q: output does not parse: %v\n%s", c.args, err, out)
			continue
		}
		tun := cfg.Tunnels[0]
		var fw, jumps []string
		for _, f := range tun.Forwards {
			fw = append(fw, f.String())
		}
		for _, j := range tun.Jump {
			jumps = append(jumps, j.String())
		}
		var locals []string
		for _, l := range tun.LocalForwards {
			locals = append(locals, l.ListenString()+"->"+l.ConnectString())
		}
		if got := strings.Join(locals, " "); got != c.locals {
			t.Errorf("%q: local forwards %q, want %q\n%s", c.args, got, c.locals, out)
		}
		if tun.Server.String() != c.server || strings.Join(fw, " ") != c.forwards || strings.Join(jumps, " ") != c.jumps || tun.ExitOnForwardFailure != c.eoff {
			t.Errorf("%q:\n got server %s forwards %q jumps %q eoff %v\nwant server %s forwards %q jumps %q eoff %v\n%s",
				c.args, tun.Server, fw, jumps, tun.ExitOnForwardFailure, c.server, c.forwards, c.jumps, c.eoff, out)
		}
		if c.identity != "" && strings.Join(tun.Server.Identities, ",") != c.identity {
			t.Errorf("%q: identity %s, want %s", c.args, tun.Server.Identities, c.identity)
		}
		if c.knownHosts != "" && tun.Server.KnownHosts != c.knownHosts {
			t.Errorf("%q: known_hosts %s, want %s", c.args, tun.Server.KnownHosts, c.knownHosts)
		}
		ep := tun.Server
		trust := fmt.Sprintf("cert=%s agent=%s alias=%s acceptnew=%v hash=%v", ep.Certificate, ep.IdentityAgent, ep.HostKeyAlias, ep.AcceptNew, ep.HashKnownHosts)
		if c.trust != "" && trust != c.trust {
			t.Errorf("%q:\n got %s\nwant %s\n%s", c.args, trust, c.trust, out)
		}
		if c.notes != "" && !strings.Contains(out, c.notes) {
			t.Errorf("%q: output lacks the note %q:\n%s", c.args, c.notes, out)
		}
	}
}

// What rtunnel cannot honour is refused with the reason, exit 78.
func TestImportAutosshRefuses(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"autossh", "-M", "0", "-N", "-o", "StrictHostKeyChecking=no", "-R", "2220:localhost:22", "u@h"}, "never connects to a host whose key it cannot check"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "UserKnownHostsFile=/dev/null", "-R", "2220:localhost:22", "u@h"}, "an empty known_hosts means no host key check"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "ProxyCommand=nc -X 5 -x proxy:1080 %h %p", "-R", "2220:localhost:22", "u@h"}, "use -J (ProxyJump)"},
		{[]string{"autossh", "-M", "0", "-N", "-D", "1080", "u@h"}, "a SOCKS proxy"},
		{[]string{"autossh", "-M", "0", "-N", "-R", "1080", "u@h"}, "a reverse SOCKS proxy"},
		{[]string{"autossh", "-M", "0", "-N", "-L", "1080", "u@h"}, "-L 1080: a SOCKS proxy"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "LocalForward=15432 run/db.sock", "u@h"}, `socket path "run/db.sock" is relative`},
		{[]string{"autossh", "-M", "0", "-N", "-4", "-R", "2220:localhost:22", "u@h"}, "one address family"},
		{[]string{"autossh", "-M", "0", "-R", "2220:localhost:22", "u@h", "while", "true;", "do", "sleep", "60;", "done"}, "is a remote command"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "Frobnicate=yes", "-R", "2220:localhost:22", "u@h"}, "-o Frobnicate=yes: not supported"},
		{[]string{"autossh", "-M", "0", "-N", "u@h"}, "no -R or -L"},
		{[]string{"autossh", "-M", "0", "-N", "-R", "2220:localhost:22"}, "no destination"},
		{[]string{"autossh", "-M", "0", "-N", "-S", "/tmp/ctl", "-R", "2220:localhost:22", "u@h"}, "multiplexing"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "StrictHostKeyChecking=off", "-R", "2220:localhost:22", "u@h"}, "use accept-new to learn the hub's key"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "CertificateFile=/etc/a-cert.pub", "-o", "CertificateFile=/etc/b-cert.pub", "-R", "2220:localhost:22", "u@h"}, "a second certificate"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "IdentityAgent=$AGENT_SOCK", "-R", "2220:localhost:22", "u@h"}, "rtunnel reads no environment variable but SSH_AUTH_SOCK"},
		{[]string{"autossh", "-M", "0", "-N", "-i", "id_rsa", "-R", "2220:localhost:22", "u@h"}, "-i id_rsa: the path is relative"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "IdentityFile=~/.ssh/%r@%h", "-R", "2220:localhost:22", "u@h"}, "ssh expands %-tokens here"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "HashKnownHosts=maybe", "-R", "2220:localhost:22", "u@h"}, "-o HashKnownHosts=maybe: want yes or no"},
		{[]string{"autossh", "-M", "0", "-N", "-o", "HostKeyAlias=bad alias", "-R", "2220:localhost:22", "u@h"}, "-o HostKeyAlias=bad alias: takes one value"},
	}
	for _, c := range cases {
		code, out, errOut := runCmd(t, append([]string{"import-autossh", "--"}, c.args...)...)
		if code != exitConfig || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 78, nothing printed, an error with %q", c.args, code, out, errOut, c.want)
		}
	}
}

// A unit with Environment=, an EnvironmentFile and $VAR in ExecStart.
func TestImportAutosshUnit(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "autossh-tunnel")
	writeFile(t, dir, "autossh-tunnel", "# /etc/default/autossh-tunnel\nAUTOSSH_GATETIME=0\nAUTOSSH_POLL=60\nSSH_OPTS=\"-o ServerAliveInterval=60 -o ServerAliveCountMax=2\"\n")
	unit := writeFile(t, dir, "autossh-tunnel.service", `[Unit]
Description=Reverse SSH tunnel to the vpn
After=network-online.target

[Service]
User=root
Environment="AUTOSSH_PIDFILE=/run/autossh.pid" AUTOSSH_LOGLEVEL=7
EnvironmentFile=`+envFile+`
EnvironmentFile=-/nonexistent/optional
ExecStart=/usr/bin/autossh -M 0 -N \
    -o "ExitOnForwardFailure yes" $SSH_OPTS \
    -R 2220:localhost:22 -i /etc/rtunnel/id_ed25519 tunnel@203.0.113.50
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
`)
	out, cfg := importParsed(t, "--unit", unit)
	tun := cfg.Tunnels[0]
	if tun.Keepalive.Interval.Seconds() != 60 || tun.Keepalive.CountMax != 2 || !tun.ExitOnForwardFailure {
		t.Errorf("keepalive %+v eoff %v, want 60s x 2 and true from the unit's options", tun.Keepalive, tun.ExitOnForwardFailure)
	}
	if strings.Join(tun.Server.Identities, ",") != "/etc/rtunnel/id_ed25519" || tun.Server.KnownHosts != "/root/.ssh/known_hosts" {
		t.Errorf("identity %s known_hosts %s", tun.Server.Identities, tun.Server.KnownHosts)
	}
	for _, note := range []string{"AUTOSSH_GATETIME=0", "AUTOSSH_POLL=60", "AUTOSSH_PIDFILE=/run/autossh.pid", "AUTOSSH_LOGLEVEL=7"} {
		if !strings.Contains(out, "# - "+note) {
			t.Errorf("output lacks a note on %s:\n%s", note, out)
		}
	}

	// The /etc/default file alone: the variable with the command.
	writeFile(t, dir, "default", "AUTOSSH_MAXSTART=5\nDAEMON_ARGS='-M 0 -N -R 2220:localhost:22 t@h'\n")
	code, _, errOut := runCmd(t, "import-autossh", "--unit", filepath.Join(dir, "default"))
	if code != exitConfig || !strings.Contains(errOut, "AUTOSSH_MAXSTART=5: rtunnel never gives up") {
		t.Errorf("exit %d, %s; want 78 and the AUTOSSH_MAXSTART refusal", code, errOut)
	}
	writeFile(t, dir, "default", "AUTOSSH_GATETIME=0\nDAEMON_ARGS='-M 0 -N -R 2220:localhost:22 t@h'\n")
	_, cfg = importParsed(t, "--unit", filepath.Join(dir, "default"))
	if cfg.Tunnels[0].Server.String() != "t@h:22" {
		t.Errorf("server %s from DAEMON_ARGS", cfg.Tunnels[0].Server)
	}
	if err := os.Remove(envFile); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "import-autossh", "--unit", unit)
	if code != exitConfig || !strings.Contains(errOut, unit+":8: EnvironmentFile "+envFile+": no such file") {
		t.Errorf("exit %d, %s; want 78 naming the unit's EnvironmentFile line", code, errOut)
	}
}

// -F: the alias is resolved from the same file, the command line's values
// win as they did for ssh; -c/-o Ciphers/MACs become rtunnel's keys.
func TestImportAutosshSSHConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "id_hub", "x\n")
	writeFile(t, dir, "known_hosts", "x\n")
	sshConfig := writeFile(t, dir, "ssh_config", "Host hub\n  HostName hub.example.net\n  User tunnel\n  IdentityFile "+dir+"/id_hub\n  UserKnownHostsFile "+dir+"/known_hosts\n  RemoteForward 2220 localhost:22\n")
	out, cfg := importParsed(t, "--", "autossh", "-M", "0", "-N", "-F", sshConfig, "-p", "2022", "-c", "aes256-ctr,aes128-ctr",
		"-o", "MACs=+hmac-sha1", "-o", "ServerAliveInterval=30", "hub")
	tun := cfg.Tunnels[0]
	if tun.Server.String() != "tunnel@hub.example.net:2022" || tun.Keepalive.Interval != 30*time.Second || len(tun.Forwards) != 1 {
		t.Errorf("server %s keepalive %s forwards %v\n%s", tun.Server, tun.Keepalive.Interval, tun.Forwards, out)
	}
	var algs []string
	for _, a := range tun.Algorithms {
		algs = append(algs, a.Key+"="+a.Spec)
	}
	if strings.Join(algs, " ") != "ciphers=aes256-ctr,aes128-ctr macs=+hmac-sha1" {
		t.Errorf("algorithms %v\n%s", algs, out)
	}
	// The command line's trust options win over the Host's, as for ssh.
	out, cfg = importParsed(t, "--", "autossh", "-M", "0", "-N", "-F", sshConfig, "-o", "StrictHostKeyChecking=accept-new",
		"-o", "HostKeyAlias=hub-key", "-o", "HashKnownHosts=yes", "-o", "CertificateFile="+dir+"/id_hub-cert.pub", "hub")
	ep := cfg.Tunnels[0].Server
	if !ep.AcceptNew || !ep.HashKnownHosts || ep.HostKeyAlias != "hub-key" || ep.Certificate != dir+"/id_hub-cert.pub" ||
		strings.Join(ep.Identities, ",") != dir+"/id_hub" || ep.KnownHosts != dir+"/known_hosts" {
		t.Errorf("with -F and trust options: %+v\n%s", ep, out)
	}
	out, cfg = importParsed(t, "--", "autossh", "-M", "0", "-N", "-F", sshConfig, "-o", "IdentityAgent=SSH_AUTH_SOCK", "hub")
	if ep := cfg.Tunnels[0].Server; ep.IdentityAgent != "SSH_AUTH_SOCK" || len(ep.Identities) != 0 ||
		!strings.Contains(out, "rtunnel's identity_agent: replaces the Host's IdentityFile") {
		t.Errorf("with -F and IdentityAgent: identity %v agent %q, want the agent alone and a note saying so\n%s", ep.Identities, ep.IdentityAgent, out)
	}
	code, _, errOut := runCmd(t, "import-autossh", "--", "autossh", "-M", "0", "-N", "-F", sshConfig, "-J", "bastion", "hub")
	if code != exitConfig || !strings.Contains(errOut, "-J with -F") {
		t.Errorf("-J with -F: exit %d %s", code, errOut)
	}
}
