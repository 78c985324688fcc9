package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rtunnel/rtunnel/config/sshconfig"
	"go.yaml.in/yaml/v3"
)

const hintSSHConfig = "the OpenSSH client config whose Host the server: alias names, e.g. /etc/rtunnel/ssh_config"

// sshOptions are the local facts ssh_config tokens and ~ refer to: the
// account rtunnel runs as.
func sshOptions() (sshconfig.Options, error) {
	u, err := user.Current()
	if err != nil {
		return sshconfig.Options{}, fmt.Errorf("cannot tell the user rtunnel runs as (for ~ and %%u in ssh_config): %v", err)
	}
	host, _ := os.Hostname()
	return sshconfig.Options{LocalUser: u.Username, Home: u.HomeDir, UID: os.Getuid(), LocalHost: host}, nil
}

// splitAlias reads server: as ssh reads its destination: [user@]alias[:port],
// user and port then winning as ssh -l and -p do.
func splitAlias(s string) (user, alias string, port int, err error) {
	rest := s
	if at := strings.LastIndex(s, "@"); at >= 0 {
		user, rest = s[:at], s[at+1:]
		if user == "" {
			return "", "", 0, fmt.Errorf("%q has an empty user before @", s)
		}
	}
	alias = rest
	if strings.HasPrefix(rest, "[") || strings.Count(rest, ":") == 1 {
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			return "", "", 0, fmt.Errorf("%q is not [user@]alias[:port]", s)
		}
		if port, err = parsePort(p, false); err != nil {
			return "", "", 0, fmt.Errorf("%q: %v", s, err)
		}
		alias = h
	}
	if alias == "" || strings.ContainsAny(alias, " \t,") {
		return "", "", 0, fmt.Errorf("%q: the alias must be one Host name", s)
	}
	return user, alias, port, nil
}

// tunnelFromSSHConfig fills t from the alias server: names in the
// ssh_config at path. Every value written in rtunnel's own config wins.
func (d *decoder) tunnelFromSSHConfig(t *Tunnel, n *yaml.Node, key, path string, serverNode *yaml.Node, a auth, jumpNode, forwardsNode, localForwardsNode *yaml.Node) {
	serverKey := key + ".server"
	s := d.required(n, serverNode, serverKey, "write server: ALIAS, a Host of "+path)
	if s == "" {
		return
	}
	user, alias, port, err := splitAlias(s)
	if err != nil {
		d.fail(serverNode, serverKey, "%v", err)
		return
	}
	opts, err := sshOptions()
	if err != nil {
		d.fail(serverNode, serverKey, "%v", err)
		return
	}
	opts.User, opts.Port = user, port
	h, err := sshconfig.Resolve(path, alias, opts)
	if err != nil {
		d.fail(serverNode, serverKey, "alias %q: %v", alias, err)
		return
	}
	use := &SSHConfigUse{Path: path, Alias: alias}
	t.SSHConfig = use
	fail := func(msg string, args ...any) {
		d.fail(serverNode, serverKey, "alias %q from %s: %s", alias, path, fmt.Sprintf(msg, args...))
	}
	from := func(h *sshconfig.Host, directive, name string) string {
		if src, ok := h.Set[directive]; ok {
			return fmt.Sprintf("%s:%d %s", src.File, src.Line, name)
		}
		return "default " + name
	}
	for _, p := range notYet(h) {
		fail("%s", p)
	}
	if checkHost(h.HostName) != nil {
		fail("HostName %q is not a host name or address rtunnel can dial", h.HostName)
	}
	t.Server = Endpoint{User: h.User, Host: h.HostName, Port: h.Port, Line: serverNode.Line}
	use.add("server", t.Server.String(), from(h, "hostname", "HostName")+", "+from(h, "user", "User")+", "+from(h, "port", "Port"))

	yamlWins := func(k string) bool { return valueOf(n, k) != nil }
	keepalive := valueOf(n, "keepalive")
	if keepalive == nil || valueOf(keepalive, "interval") == nil {
		if _, ok := h.Set["serveraliveinterval"]; ok && h.ServerAliveInterval > 0 {
			t.Keepalive.Interval = time.Duration(h.ServerAliveInterval) * time.Second
			if why := outside("keepalive.interval", t.Keepalive.Interval); why != "" {
				fail("ServerAliveInterval (%s): %s", from(h, "serveraliveinterval", "ServerAliveInterval"), why)
			}
			use.add("keepalive.interval", t.Keepalive.Interval.String(), from(h, "serveraliveinterval", "ServerAliveInterval"))
		}
	}
	if keepalive == nil || valueOf(keepalive, "count_max") == nil {
		if _, ok := h.Set["serveralivecountmax"]; ok && h.ServerAliveCountMax > 0 {
			t.Keepalive.CountMax = h.ServerAliveCountMax
			if t.Keepalive.CountMax > maxKeepaliveCount {
				fail("ServerAliveCountMax (%s): %d is out of range 1-%d", from(h, "serveralivecountmax", "ServerAliveCountMax"), t.Keepalive.CountMax, maxKeepaliveCount)
			}
			use.add("keepalive.count_max", strconv.Itoa(t.Keepalive.CountMax), from(h, "serveralivecountmax", "ServerAliveCountMax"))
		}
	}
	if _, ok := h.Set["connecttimeout"]; ok && !yamlWins("connect_timeout") && h.ConnectTimeout > 0 {
		t.ConnectTimeout = time.Duration(h.ConnectTimeout) * time.Second
		if why := outside("connect_timeout", t.ConnectTimeout); why != "" {
			fail("ConnectTimeout (%s): %s", from(h, "connecttimeout", "ConnectTimeout"), why)
		}
		use.add("connect_timeout", t.ConnectTimeout.String(), from(h, "connecttimeout", "ConnectTimeout"))
	}
	if _, ok := h.Set["exitonforwardfailure"]; ok && !yamlWins("exit_on_forward_failure") {
		t.ExitOnForwardFailure = h.ExitOnForwardFailure
		use.add("exit_on_forward_failure", strconv.FormatBool(t.ExitOnForwardFailure), from(h, "exitonforwardfailure", "ExitOnForwardFailure"))
	}

	// Keys, certificate, agent and host key checking: rtunnel's if
	// written, else the alias's.
	endpointFiles := func(ep *Endpoint, h *sshconfig.Host, label string, a auth) {
		add := func(k, v, from string) { use.add(strings.TrimSpace(strings.TrimSuffix(label, ": ")+" "+k), v, from) }
		if a.identity == nil && a.agent == nil {
			if ag := h.IdentityAgent; ag != "" && ag != "none" {
				ep.IdentityAgent = ag
				add("identity_agent", ag, from(h, "identityagent", "IdentityAgent"))
			}
			_, filesNamed := h.Set["identityfile"]
			ids, idFrom, err := identitiesOf(h)
			switch {
			case ep.IdentityAgent != "" && !filesNamed && !h.IdentitiesOnly:
				// ssh offers every key of the agent, then its default
				// files; rtunnel given files too would offer only those.
				add("identity", "(every key of the agent)", "no IdentityFile: ssh's default key files, which ssh tries after the agent's keys, are not offered")
			case err != nil && ep.IdentityAgent == "":
				fail("%s%v", label, err)
			case err != nil:
				// ssh skips a missing IdentityFile too and asks the agent.
				add("identity", "(every key of the agent)", err.Error())
			default:
				ep.Identities = ids
				if ep.IdentityAgent != "" && !h.IdentitiesOnly {
					idFrom += " (with IdentityAgent only these keys are offered, as IdentitiesOnly yes; ssh also offers the agent's other keys)"
				}
				add("identity", strings.Join(ids, ","), idFrom)
			}
		}
		if a.certificate == nil && len(h.CertificateFiles) > 0 {
			c, err := certificateOf(h)
			if err != nil {
				fail("%s%v", label, err)
			}
			ep.Certificate = c
			add("certificate", c, from(h, "certificatefile", "CertificateFile"))
		}
		if a.hostKeyAlias == nil && h.HostKeyAlias != "" {
			ep.HostKeyAlias = h.HostKeyAlias
			add("host_key_alias", h.HostKeyAlias, from(h, "hostkeyalias", "HostKeyAlias"))
		}
		if a.strict == nil && h.StrictHostKeyChecking == "accept-new" {
			ep.AcceptNew = true
			add("strict_host_key_checking", "accept-new", from(h, "stricthostkeychecking", "StrictHostKeyChecking"))
		}
		if a.hash == nil && h.HashKnownHosts {
			ep.HashKnownHosts = true
			add("hash_known_hosts", "true", from(h, "hashknownhosts", "HashKnownHosts"))
		}
		if a.knownHosts == nil {
			kh, khFrom, err := knownHostsOf(h, ep.AcceptNew)
			if err != nil {
				fail("%s%v", label, err)
			}
			ep.KnownHosts = kh
			add("known_hosts", kh, khFrom)
		}
	}
	endpointFiles(&t.Server, h, "", a)
	d.applyAuth(n, key, a, &t.Server, false)
	t.Server.ConnectTimeout = t.ConnectTimeout

	if jumpNode != nil {
		t.Jump = d.jumps(jumpNode, key+".jump", t.Server)
	} else {
		for _, hop := range h.Jumps {
			for _, p := range notYet(hop) {
				fail("ProxyJump hop %s: %s", hop.Alias, p)
			}
			ep := Endpoint{User: hop.User, Host: hop.HostName, Port: hop.Port, ConnectTimeout: t.ConnectTimeout, Line: serverNode.Line}
			if _, ok := hop.Set["connecttimeout"]; ok && hop.ConnectTimeout > 0 {
				ep.ConnectTimeout = time.Duration(hop.ConnectTimeout) * time.Second
				if why := outside("connect_timeout", ep.ConnectTimeout); why != "" {
					fail("ProxyJump hop %s ConnectTimeout (%s): %s", hop.Alias, from(hop, "connecttimeout", "ConnectTimeout"), why)
				}
			}
			use.add("jump", ep.String(), from(h, "proxyjump", "ProxyJump")+" -> "+from(hop, "hostname", "HostName"))
			endpointFiles(&ep, hop, "jump "+hop.Alias+": ", auth{})
			t.Jump = append(t.Jump, ep)
		}
	}

	if localForwardsNode == nil {
		for _, f := range h.LocalForwards {
			lf, err := localForwardFromSSH(f)
			if err != nil {
				fail("LocalForward %s (%s): %v", f, forwardFrom(f, "LocalForward"), err)
				continue
			}
			lf.Line = serverNode.Line
			t.LocalForwards = append(t.LocalForwards, lf)
			use.add("local_forwards", lf.ListenString()+"->"+lf.ConnectString(), forwardFrom(f, "LocalForward"))
		}
	}
	switch {
	case forwardsNode != nil:
		t.Forwards = d.forwards(forwardsNode, key+".forwards", []string{hubOf(*t)}, t.Name)
	case len(h.RemoteForwards) == 0 && len(t.LocalForwards) == 0:
		fail("no RemoteForward or LocalForward for this Host, and no forwards: in rtunnel's config: add one or the other")
	default:
		for _, f := range h.RemoteForwards {
			fw, err := forwardFromSSH(f)
			if err != nil {
				fail("RemoteForward %s (%s): %v", f, forwardFrom(f, "RemoteForward"), err)
				continue
			}
			fw.Line = serverNode.Line
			if fw.RemotePath == "" && fw.Remote.Port != 0 { // a socket or a hub-picked port claims no port
				d.claimPort(serverNode, key+".server", hubOf(*t), t.Name, fw.Remote)
			}
			t.Forwards = append(t.Forwards, fw)
			use.add("forwards", fw.String(), forwardFrom(f, "RemoteForward"))
		}
	}

	written := map[string]bool{}
	for _, a := range t.Algorithms {
		written[a.Key] = true
	}
	for _, a := range []struct{ key, directive, name, spec string }{
		{"ciphers", "ciphers", "Ciphers", h.Ciphers}, {"kex_algorithms", "kexalgorithms", "KexAlgorithms", h.KexAlgorithms},
		{"macs", "macs", "MACs", h.MACs}, {"host_key_algorithms", "hostkeyalgorithms", "HostKeyAlgorithms", h.HostKeyAlgorithms},
	} {
		if a.spec != "" && !written[a.key] {
			t.Algorithms = append(t.Algorithms, AlgorithmSpec{Key: a.key, Spec: a.spec, Line: serverNode.Line, From: from(h, a.directive, a.name)})
			use.add(a.key, a.spec, from(h, a.directive, a.name))
		}
	}
}

// forwardFrom is the file:line of one forward: each line gives its own.
func forwardFrom(f sshconfig.Forward, directive string) string {
	return fmt.Sprintf("%s:%d %s", f.Source.File, f.Source.Line, directive)
}

func (u *SSHConfigUse) add(key, value, from string) {
	u.Resolved = append(u.Resolved, Resolved{Key: key, Value: value, From: from})
}

// notYet lists what the alias asks for that rtunnel does not do (yet).
func notYet(h *sshconfig.Host) []string {
	var out []string
	at := func(directive string) string {
		src := h.Set[directive]
		return fmt.Sprintf("%s:%d", src.File, src.Line)
	}
	if ag := h.IdentityAgent; strings.HasPrefix(ag, "$") {
		out = append(out, at("identityagent")+": IdentityAgent "+ag+": rtunnel reads no environment variable but SSH_AUTH_SOCK: write the socket's path")
	}
	switch h.StrictHostKeyChecking {
	case "false":
		out = append(out, at("stricthostkeychecking")+": StrictHostKeyChecking no: rtunnel never connects to a host whose key it cannot check; remove it and add the key to known_hosts")
	}
	return out
}

// identitiesOf are the keys ssh would offer, in order: the IdentityFiles
// that exist (ssh skips the others), or ssh's default keys that exist.
func identitiesOf(h *sshconfig.Host) (paths []string, from string, err error) {
	files, src := h.IdentityFiles, h.Set["identityfile"]
	if len(files) == 0 {
		files = []string{"~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ed25519"}
	}
	var tried []string
	for _, f := range files {
		p, err := h.ExpandPath(f)
		if err != nil {
			return nil, "", fmt.Errorf("%s:%d: IdentityFile %v", src.File, src.Line, err)
		}
		if !filepath.IsAbs(p) {
			return nil, "", fmt.Errorf("%s:%d: IdentityFile %q is relative: ssh takes it from its current directory, a service's is /: write the full path", src.File, src.Line, f)
		}
		tried = append(tried, p)
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	switch {
	case len(paths) > 0 && src.File == "":
		return paths, "default (ssh's default keys that exist)", nil
	case len(paths) > 0:
		return paths, fmt.Sprintf("%s:%d IdentityFile", src.File, src.Line), nil
	case src.File == "":
		return nil, "", fmt.Errorf("no IdentityFile, and none of ssh's default keys exists (%s): add IdentityFile, or set identity in rtunnel's config", strings.Join(tried, ", "))
	}
	return nil, "", fmt.Errorf("%s:%d: no IdentityFile exists (%s): fix the path, or set identity in rtunnel's config", src.File, src.Line, strings.Join(tried, ", "))
}

// certificateOf is the alias's CertificateFile; rtunnel takes one.
func certificateOf(h *sshconfig.Host) (string, error) {
	src := h.Set["certificatefile"]
	if len(h.CertificateFiles) > 1 {
		return "", fmt.Errorf("%s:%d: %d CertificateFile lines: rtunnel offers one explicit certificate (a KEY-cert.pub beside each IdentityFile is used anyway): keep one",
			src.File, src.Line, len(h.CertificateFiles))
	}
	p, err := h.ExpandPath(h.CertificateFiles[0])
	if err != nil {
		return "", fmt.Errorf("%s:%d: CertificateFile %v", src.File, src.Line, err)
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s:%d: CertificateFile %q is relative: write the full path", src.File, src.Line, h.CertificateFiles[0])
	}
	return p, nil
}

// knownHostsOf is the first known_hosts file of the alias that exists:
// UserKnownHostsFile, then GlobalKnownHostsFile. With accept-new it is the
// first UserKnownHostsFile even if missing: ssh creates it there.
func knownHostsOf(h *sshconfig.Host, acceptNew bool) (path, from string, err error) {
	if acceptNew {
		for _, p := range h.UserKnownHostsFiles {
			if p == "none" || p == "/dev/null" {
				continue
			}
			if src, ok := h.Set["userknownhostsfile"]; ok {
				return p, fmt.Sprintf("%s:%d UserKnownHostsFile", src.File, src.Line), nil
			}
			return p, "default UserKnownHostsFile", nil
		}
	}
	var tried []string
	for _, list := range []struct {
		files     []string
		directive string
		name      string
	}{{h.UserKnownHostsFiles, "userknownhostsfile", "UserKnownHostsFile"}, {h.GlobalKnownHostsFiles, "globalknownhostsfile", "GlobalKnownHostsFile"}} {
		for _, p := range list.files {
			if p == "none" || p == "/dev/null" {
				continue
			}
			tried = append(tried, p)
			if _, err := os.Stat(p); err == nil {
				if src, ok := h.Set[list.directive]; ok {
					return p, fmt.Sprintf("%s:%d %s", src.File, src.Line, list.name), nil
				}
				return p, "default " + list.name, nil
			}
		}
	}
	return "", "", fmt.Errorf("no known_hosts file exists (%s): add the hub's key with ssh-keyscan, or set known_hosts in rtunnel's config", strings.Join(tried, ", "))
}

// forwardFromSSH turns a RemoteForward into rtunnel's forward: a socket
// path on either side, and port 0 (the hub picks), map as they are.
func forwardFromSSH(f sshconfig.Forward) (Forward, error) {
	switch {
	case f.Dynamic:
		return Forward{}, errors.New("a dynamic (SOCKS) remote forward is not supported: name the target, port:host:hostport")
	case f.HasListenHost && (f.ListenHost == "" || f.ListenHost == "*"):
		return Forward{}, errors.New("an empty or * bind address is not supported: write the address to bind, e.g. 0.0.0.0")
	}
	var fw Forward
	if f.ListenPath != "" {
		if err := checkSocketPath(f.ListenPath); err != nil {
			return Forward{}, err
		}
		fw.RemotePath = f.ListenPath
	} else {
		host := "localhost" // what ssh sends without a bind address
		if f.HasListenHost {
			host = f.ListenHost
		}
		remote, err := ParseAddr(net.JoinHostPort(host, strconv.Itoa(f.ListenPort)), true)
		if err != nil {
			return Forward{}, err
		}
		fw.Remote = remote
	}
	var err error
	fw.Local, fw.LocalPath, err = connectSide(f)
	return fw, err
}

// localForwardFromSSH turns a LocalForward into rtunnel's local forward.
func localForwardFromSSH(f sshconfig.Forward) (LocalForward, error) {
	if f.Dynamic {
		return LocalForward{}, errors.New("DynamicForward (SOCKS) is not supported: name the target, port:host:hostport")
	}
	var lf LocalForward
	if f.ListenPath != "" {
		if err := checkSocketPath(f.ListenPath); err != nil {
			return LocalForward{}, err
		}
		lf.ListenPath = f.ListenPath
	} else {
		// Without a bind address ssh listens on loopback only
		// (GatewayPorts no); "*" or an empty one means every address.
		host := "localhost"
		if f.HasListenHost {
			host = f.ListenHost
			if host == "" || host == "*" {
				host = "0.0.0.0"
			}
		}
		listen, err := ParseAddr(net.JoinHostPort(host, strconv.Itoa(f.ListenPort)), false)
		if err != nil {
			return LocalForward{}, err
		}
		lf.Listen = listen
	}
	var err error
	lf.Connect, lf.ConnectPath, err = connectSide(f)
	return lf, err
}

// connectSide is a forward's target: a socket path or host:port.
func connectSide(f sshconfig.Forward) (Addr, string, error) {
	if f.ConnectPath != "" {
		return Addr{}, f.ConnectPath, checkSocketPath(f.ConnectPath)
	}
	a, err := ParseAddr(net.JoinHostPort(f.ConnectHost, strconv.Itoa(f.ConnectPort)), false)
	return a, "", err
}
