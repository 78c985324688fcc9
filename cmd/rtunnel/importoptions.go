package main

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/rtunnel/rtunnel/config/sshconfig"
)

// flag handles an option without an argument.
func (t *importedTunnel) flag(opt byte) error {
	switch opt {
	case 'N', 'T', 'n':
		// rtunnel never runs a command or asks for a terminal.
	case 'f':
		t.note("-f (background): run rtunnel as its systemd service (rtunnel up), which stays in the foreground for systemd")
	case 'q':
		// rtunnel's log level is the config's.
	case 'v':
		t.note("-v: set log: {level: debug} at the top of the file for verbose logs")
	case 'G', 'V':
		return fmt.Errorf("-%c prints something and exits: not a tunnel", opt)
	case 'C':
		t.note("-C (compression): rtunnel does not compress; it has no effect on what the tunnel carries")
	case 'x', 'X', 'Y', 'A', 'a', 'k', 'K', 't', 'g', 's', 'y':
		switch opt {
		case 'g':
			t.note("-g (remote hosts may use local forwards): rtunnel has no local forwards here")
		case 's':
			return errors.New("-s (subsystem): rtunnel runs no subsystem")
		default:
			t.note("-%c: interactive-session option, no effect on a tunnel", opt)
		}
	case '4', '6':
		return fmt.Errorf("-%c (one address family only): rtunnel dials whatever the name resolves to; write an IPv%c address as the host instead", opt, opt)
	case 'M':
		// Without an argument this is ssh's -M (ControlMaster); autossh's -M takes one.
		return errors.New("-M without a port: ssh's ControlMaster mode: rtunnel does not multiplex sessions")
	default:
		return fmt.Errorf("-%c: unknown option", opt)
	}
	return nil
}

// option handles an option with an argument.
func (t *importedTunnel) option(opt byte, val string, runAs account) error {
	switch opt {
	case 'M':
		port, _, _ := strings.Cut(val, ":")
		if port == "0" {
			t.note("-M 0: autossh's monitor port was off; rtunnel watches the link with keepalives (keepalive:)")
		} else {
			t.note("-M %s: autossh's monitor port loop is replaced by keepalives (keepalive:), counted as ssh's ServerAlive; free the monitor ports on the hub", val)
		}
	case 'R':
		return t.forward(val, true)
	case 'L':
		return t.forward(val, false)
	case 'D':
		return fmt.Errorf("-D %s: a SOCKS proxy; rtunnel has none", val)
	case 'J':
		if strings.EqualFold(val, "none") {
			return nil
		}
		t.jump = append(t.jump, strings.Split(val, ",")...)
	case 'i':
		return t.addIdentity(val)
	case 'p':
		p, err := strconv.Atoi(val)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("-p %q: not a port", val)
		}
		t.port = p
	case 'l':
		t.user = val
	case 'F':
		if val != "none" {
			t.sshConfig = val
		}
	case 'o':
		return t.sshOption(val, runAs)
	case 'c':
		t.algorithms = append(t.algorithms, [2]string{"ciphers", val})
	case 'm':
		t.algorithms = append(t.algorithms, [2]string{"macs", val})
	case 'E':
		t.note("-E %s: rtunnel logs to stderr (the journal under systemd)", val)
	case 'e':
		t.note("-e: escape character, interactive only")
	case 'b', 'B':
		return fmt.Errorf("-%c %s: rtunnel does not choose the source address or interface", opt, val)
	case 'I':
		return fmt.Errorf("-I %s: PKCS#11 tokens are not supported; use a key file", val)
	case 'W':
		return fmt.Errorf("-W %s: stdio forwarding is a ProxyCommand helper, not a tunnel", val)
	case 'w':
		return fmt.Errorf("-w %s: tun/tap forwarding is not supported", val)
	case 'S', 'O':
		return fmt.Errorf("-%c %s: connection multiplexing (ControlPath) is not supported: rtunnel keeps its own session", opt, val)
	case 'Q':
		return fmt.Errorf("-Q %s prints a list and exits: not a tunnel", val)
	case 'P':
		t.note("-P %s: tag for Match tagged; rtunnel does not match tags", val)
	}
	return nil
}

// forward maps -R/-L (and RemoteForward/LocalForward) to a forward or a
// local forward. Socket paths stay paths; -R with port 0 stays port 0 (the
// hub picks it).
func (t *importedTunnel) forward(spec string, remote bool) error {
	flag := map[bool]string{true: "-R", false: "-L"}[remote]
	f, err := sshconfig.ParseForward(spec, remote)
	if err != nil {
		return fmt.Errorf("%s %s: %v", flag, spec, err)
	}
	if f.Dynamic {
		if remote {
			return fmt.Errorf("-R %s: a reverse SOCKS proxy (one argument); rtunnel forwards to one fixed target", spec)
		}
		return fmt.Errorf("-L %s: a SOCKS proxy; rtunnel forwards to one fixed target", spec)
	}
	listen := f.ListenPath
	if listen == "" {
		bind := "localhost" // what ssh sends (-R) or binds (-L) when no bind address is given
		if f.HasListenHost {
			bind = f.ListenHost
			if bind == "" || bind == "*" {
				bind = "0.0.0.0"
				t.note("%s %s: the empty or * bind address (every address; for -R only if the hub's GatewayPorts allows) is written as 0.0.0.0 (IPv4 only)", flag, spec)
			}
		}
		listen = net.JoinHostPort(bind, strconv.Itoa(f.ListenPort))
	}
	target := f.ConnectPath
	if target == "" {
		target = net.JoinHostPort(f.ConnectHost, strconv.Itoa(f.ConnectPort))
	}
	for _, side := range []string{f.ListenPath, f.ConnectPath} {
		if side != "" && !strings.HasPrefix(side, "/") {
			return fmt.Errorf("%s %s: socket path %q is relative: ssh takes it from its current directory, a service's is /: write the full path", flag, spec, side)
		}
	}
	if remote {
		if f.ListenPath == "" && f.ListenPort == 0 {
			t.note("-R %s: the hub picks the port; rtunnel logs it, exports rtunnel_forward_allocated_port and writes it to $RUNTIME_DIRECTORY/<tunnel>.ports", spec)
		}
		t.forwards = append(t.forwards, [2]string{listen, target})
	} else {
		t.localForwards = append(t.localForwards, [2]string{listen, target})
	}
	return nil
}

// sshOption maps one -o Key=Value.
func (t *importedTunnel) sshOption(kv string, runAs account) error {
	key, args, err := splitSSHOption(kv)
	if err != nil {
		return err
	}
	if handled, err := t.identityOption(key, args, kv); handled {
		return err
	}
	val := strings.Join(args, " ")
	bad := func(why string) error { return fmt.Errorf("-o %s: %s", kv, why) }
	switch key {
	case "serveraliveinterval", "connecttimeout":
		d, err := sshSeconds(val)
		if err != nil {
			return bad(err.Error())
		}
		if key == "connecttimeout" {
			t.connectTimeout = d
		} else if d == "0s" {
			t.note("-o ServerAliveInterval=0: ssh sent no keepalives; rtunnel always does (keepalive:), the default 15s is kept")
		} else {
			t.keepInterval = d
		}
	case "serveralivecountmax":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 {
			return bad("want a whole number of at least 1")
		}
		t.keepCount = val
	case "exitonforwardfailure":
		b, err := yesNo(val)
		if err != nil {
			return bad(err.Error())
		}
		t.exitOnForwardFailure = strconv.FormatBool(b)
	case "port":
		return t.option('p', val, runAs)
	case "user":
		return t.option('l', val, runAs)
	case "hostname":
		t.host = val
	case "proxyjump":
		return t.option('J', val, runAs)
	case "remoteforward", "localforward":
		if len(args) == 2 {
			return t.forward(args[0]+":"+args[1], key == "remoteforward")
		}
		return t.forward(val, key == "remoteforward")
	case "ciphers", "kexalgorithms", "macs", "hostkeyalgorithms":
		yamlKey := map[string]string{"ciphers": "ciphers", "kexalgorithms": "kex_algorithms", "macs": "macs", "hostkeyalgorithms": "host_key_algorithms"}[key]
		t.algorithms = append(t.algorithms, [2]string{yamlKey, val})
	case "proxycommand":
		if strings.EqualFold(val, "none") {
			return nil
		}
		return bad("ProxyCommand runs a command to carry the connection; rtunnel dials itself: use -J (ProxyJump)")
	case "batchmode", "loglevel", "tcpkeepalive", "compression", "controlmaster", "controlpath", "controlpersist",
		"requesttty", "forwardagent", "forwardx11", "passwordauthentication", "kbdinteractiveauthentication",
		"challengeresponseauthentication", "preferredauthentications", "checkhostip", "connectionattempts",
		"verifyhostkeydns", "updatehostkeys", "visualhostkey", "gssapiauthentication",
		"addkeystoagent", "sendenv", "setenv", "escapechar", "loglevelverbose", "logverbose", "streamlocalbindunlink",
		"gatewayports", "ipqos", "numberofpasswordprompts", "permitlocalcommand", "localcommand", "syslogfacility":
		t.note("-o %s: no counterpart in rtunnel (it never prompts, multiplexes or runs commands; it logs to the journal; it keeps its own keepalives)", kv)
	default:
		return bad("not supported by rtunnel import (see docs/MIGRATING.md for the options it maps)")
	}
	return nil
}

// splitSSHOption reads -o's argument as an ssh_config line.
func splitSSHOption(kv string) (string, []string, error) {
	line := kv
	if k, v, ok := strings.Cut(kv, "="); ok && !strings.ContainsAny(k, " \t") {
		line = k + " " + v
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return "", nil, fmt.Errorf("-o %q: want Key=Value", kv)
	}
	return strings.ToLower(f[0]), f[1:], nil
}

var sshTimeRE = lazyRegexp(`^(\d+[smhdwSMHDW]?)+$`)

// sshSeconds turns an ssh time (120, 2m, 1m30s) into a Go duration string.
func sshSeconds(v string) (string, error) {
	if !sshTimeRE().MatchString(v) {
		return "", fmt.Errorf("%q is not a time (seconds, or e.g. 1m30s)", v)
	}
	secs, n := 0, 0
	for _, c := range strings.ToLower(v) {
		if c >= '0' && c <= '9' {
			n = n*10 + int(c-'0')
			continue
		}
		secs += n * map[rune]int{'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}[c]
		n = 0
	}
	return strconv.Itoa(secs+n) + "s", nil
}

// environment maps autossh's AUTOSSH_* variables.
func (t *importedTunnel) environment(env map[string]string) error {
	for _, k := range sortedKeys(env) {
		v := env[k]
		if !strings.HasPrefix(k, "AUTOSSH_") {
			continue
		}
		switch k {
		case "AUTOSSH_PORT":
			if err := t.option('M', v, account{}); err != nil {
				return err
			}
		case "AUTOSSH_GATETIME":
			t.note("%s=%s: rtunnel has no gate time: it retries every failure but a config error (exit 78), with backoff:", k, v)
		case "AUTOSSH_POLL", "AUTOSSH_FIRST_POLL", "AUTOSSH_MESSAGE":
			t.note("%s=%s: monitor-port polling is replaced by keepalive: (ServerAliveInterval)", k, v)
		case "AUTOSSH_LOGFILE", "AUTOSSH_LOGLEVEL", "AUTOSSH_DEBUG":
			t.note("%s=%s: rtunnel logs to stderr (the journal); set log: {level: debug} for more", k, v)
		case "AUTOSSH_PIDFILE":
			t.note("%s=%s: systemd tracks rtunnel's pid (Type=notify); no pid file", k, v)
		case "AUTOSSH_PATH":
			t.note("%s=%s: rtunnel does not run ssh", k, v)
		case "AUTOSSH_MAXSTART", "AUTOSSH_MAXLIFETIME":
			return fmt.Errorf("%s=%s: rtunnel never gives up nor restarts on a timer; remove it (systemd's RuntimeMaxSec= or StartLimitBurst= do that for any service)", k, v)
		case "AUTOSSH_NTSERVICE":
			return fmt.Errorf("%s=%s: Windows services are not supported", k, v)
		default:
			return fmt.Errorf("%s=%s: unknown autossh variable", k, v)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
