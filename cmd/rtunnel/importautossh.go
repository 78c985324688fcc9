package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/rtunnel/rtunnel/config/sshconfig"
	"github.com/spf13/cobra"
)

func newImportAutosshCmd(stdout io.Writer) *cobra.Command {
	var unit, name string
	cmd := &cobra.Command{
		Use:   "import-autossh [--unit FILE | -- AUTOSSH-OR-SSH-COMMAND...]",
		Short: "Print the rtunnel config equivalent to an autossh (or ssh -R) command line or unit",
		Long: "Reads an autossh or ssh command line (after --), or a systemd unit or /etc/default file that\n" +
			"runs autossh (--unit), and prints the equivalent rtunnel YAML: -M, AUTOSSH_* variables, -R and\n" +
			"-L, -J, -i, -p, -l, -F and the -o options rtunnel knows. What has no counterpart is written as\n" +
			"a comment saying why; what rtunnel cannot honour is refused (exit 78), never dropped.",
		Example: "  rtunnel import-autossh -- autossh -M 0 -fN -R 2220:localhost:22 tunnel@203.0.113.50 -p 22 -o ServerAliveInterval=120\n" +
			"  rtunnel import-autossh --unit /etc/systemd/system/autossh-tunnel.service > /etc/rtunnel/rtunnel.yaml",
		RunE: func(_ *cobra.Command, args []string) error {
			var (
				in  autosshInvocation
				err error
			)
			switch {
			case unit != "" && len(args) > 0:
				return &exitError{code: exitConfig, err: errors.New("give either --unit FILE or a command line after --, not both")}
			case unit != "":
				in, err = readAutosshUnit(unit)
			case len(args) > 0:
				in = autosshInvocation{argv: args, env: map[string]string{}, source: "command line"}
				in.runAs, err = currentAccount()
			default:
				return &exitError{code: exitConfig, err: errors.New("nothing to import: give --unit FILE or the command after --")}
			}
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			out, err := importAutossh(in, name)
			if err != nil {
				return &exitError{code: exitConfig, err: fmt.Errorf("%s: %w", in.source, err)}
			}
			_, err = io.WriteString(stdout, out)
			return err
		},
	}
	cmd.Flags().StringVar(&unit, "unit", "", "systemd unit or /etc/default file that runs autossh")
	cmd.Flags().StringVar(&name, "name", "", "tunnel name (default: from the destination host)")
	return cmd
}

// autosshInvocation is one autossh run: its argv (from autossh or ssh on),
// its environment (AUTOSSH_*) and the account it runs as.
type autosshInvocation struct {
	argv   []string
	env    map[string]string
	runAs  account
	source string // for messages: "command line" or the unit file
}

// account is who ssh runs as: the default remote user and where ~ is.
type account struct{ name, home string }

func currentAccount() (account, error) {
	u, err := user.Current()
	if err != nil {
		return account{}, fmt.Errorf("cannot tell the current user (ssh's default login name and ~): %v", err)
	}
	return account{name: u.Username, home: u.HomeDir}, nil
}

// importedTunnel collects what the command line says, in rtunnel's terms.
type importedTunnel struct {
	name                 string
	user, host           string
	port                 int
	identity             string
	knownHosts           string
	sshConfig            string
	jump                 []string
	forwards             [][2]string // remote, local
	keepInterval         string
	keepCount            string
	connectTimeout       string
	exitOnForwardFailure string
	algorithms           [][2]string // key, value
	notes                []string
}

func (t *importedTunnel) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// sshArgOptions are ssh's option letters that take an argument (OpenSSH
// 9.x, plus autossh's -M).
const sshArgOptions = "BbcDEeFIiJLlMmOoPpQRSWw"

func importAutossh(in autosshInvocation, name string) (string, error) {
	t := &importedTunnel{name: name}
	argv := in.argv
	// "env AUTOSSH_GATETIME=0 autossh ..." or "AUTOSSH_POLL=30 autossh ...".
	if len(argv) > 0 && filepath.Base(argv[0]) == "env" {
		argv = argv[1:]
	}
	for len(argv) > 0 && envAssignment.MatchString(argv[0]) {
		k, v, _ := strings.Cut(argv[0], "=")
		in.env[k] = v
		argv = argv[1:]
	}
	if len(argv) > 0 && (filepath.Base(argv[0]) == "autossh" || filepath.Base(argv[0]) == "ssh") {
		argv = argv[1:]
	}
	if err := t.environment(in.env); err != nil {
		return "", err
	}
	var dest string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			if a == "--" {
				i++
				if i == len(argv) {
					break
				}
				a = argv[i]
			}
			if dest != "" {
				return "", fmt.Errorf("%q after the destination is a remote command: rtunnel runs none (autossh tunnels use -N); remove it", strings.Join(argv[i:], " "))
			}
			dest = a
			continue
		}
		// A cluster like -fN or -p2222 or -oKey=value, as getopt reads it.
		for j := 1; j < len(a); j++ {
			opt := a[j]
			if !strings.ContainsRune(sshArgOptions, rune(opt)) {
				if err := t.flag(opt); err != nil {
					return "", err
				}
				continue
			}
			val := a[j+1:]
			if val == "" {
				i++
				if i == len(argv) {
					return "", fmt.Errorf("-%c needs an argument", opt)
				}
				val = argv[i]
			}
			if err := t.option(opt, val, in.runAs); err != nil {
				return "", err
			}
			break
		}
	}
	if dest == "" {
		return "", errors.New("no destination ([user@]host) in the command line")
	}
	if err := t.destination(dest, in.runAs); err != nil {
		return "", err
	}
	if len(t.forwards) == 0 && t.sshConfig == "" {
		return "", errors.New("no -R (or RemoteForward) forward: a tunnel without a forward has nothing to keep up")
	}
	if len(t.jump) > 0 && t.sshConfig != "" {
		return "", fmt.Errorf("-J with -F: ssh resolves each hop as a Host of %s, rtunnel's jump: takes user@host[:port]: move the hops to a ProxyJump line of the destination's Host block", t.sshConfig)
	}
	t.defaults(in.runAs)
	return t.yaml(in), nil
}

// flag handles an option without an argument.
func (t *importedTunnel) flag(opt byte) error {
	switch opt {
	case 'N', 'T', 'n':
		// rtunnel never runs a command or asks for a terminal.
	case 'f':
		t.note("-f (background): run rtunnel as its systemd service (rtunnel up), which stays in the foreground for systemd")
	case 'q', 'v', 'V', 'G':
		if opt == 'v' {
			t.note("-v: set log: {level: debug} at the top of the file for verbose logs")
		}
		if opt == 'G' || opt == 'V' {
			return fmt.Errorf("-%c prints something and exits: not a tunnel", opt)
		}
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
		if t.identity == "" {
			t.identity = val
		} else {
			return fmt.Errorf("-i %s: a second identity; rtunnel logs in with one key per hop", val)
		}
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

// forward maps -R/-L (and RemoteForward/LocalForward) to a forward.
func (t *importedTunnel) forward(spec string, remote bool) error {
	flag := map[bool]string{true: "-R", false: "-L"}[remote]
	f, err := sshconfig.ParseForward(spec, remote)
	if err != nil {
		return fmt.Errorf("%s %s: %v", flag, spec, err)
	}
	switch {
	case !remote:
		return fmt.Errorf("-L %s: local forwards are not supported yet (rtunnel carries remote forwards only)", spec)
	case f.Dynamic:
		return fmt.Errorf("-R %s: a reverse SOCKS proxy (one argument); rtunnel forwards to one fixed target", spec)
	case f.ListenPath != "" || f.ConnectPath != "":
		return fmt.Errorf("-R %s: Unix socket forwards are not supported yet", spec)
	case f.ListenPort == 0:
		return fmt.Errorf("-R %s: port 0 (the hub picks the port) is not supported yet", spec)
	}
	bind := "localhost" // what ssh sends when no bind address is given
	if f.HasListenHost {
		bind = f.ListenHost
		if bind == "" || bind == "*" {
			bind = "0.0.0.0"
			t.note("%s %s: the empty or * bind address (every address, if the hub's GatewayPorts allows) is written as 0.0.0.0 (IPv4 only; permitlisten must say 0.0.0.0:%d)", flag, spec, f.ListenPort)
		}
	}
	local := net.JoinHostPort(f.ConnectHost, strconv.Itoa(f.ConnectPort))
	t.forwards = append(t.forwards, [2]string{net.JoinHostPort(bind, strconv.Itoa(f.ListenPort)), local})
	return nil
}

// sshOption maps one -o Key=Value.
func (t *importedTunnel) sshOption(kv string, runAs account) error {
	key, args, err := splitSSHOption(kv)
	if err != nil {
		return err
	}
	val := strings.Join(args, " ")
	bad := func(why string) error { return fmt.Errorf("-o %s: %s", kv, why) }
	yes := func() (bool, error) {
		switch strings.ToLower(val) {
		case "yes", "true":
			return true, nil
		case "no", "false":
			return false, nil
		}
		return false, bad("want yes or no")
	}
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
		b, err := yes()
		if err != nil {
			return err
		}
		t.exitOnForwardFailure = strconv.FormatBool(b)
	case "stricthostkeychecking":
		switch strings.ToLower(val) {
		case "yes", "true", "ask":
		case "accept-new":
			return bad("accept-new is not supported yet: add the hub's key to known_hosts (ssh-keyscan) and use yes")
		default:
			return bad("rtunnel never connects to a host whose key it cannot check: remove it and add the hub's key to known_hosts (ssh-keyscan)")
		}
	case "userknownhostsfile":
		if len(args) != 1 {
			return bad("rtunnel reads one known_hosts file: merge them into one")
		}
		if args[0] == "/dev/null" {
			return bad("an empty known_hosts means no host key check; rtunnel always checks: name the file that holds the hub's key")
		}
		t.knownHosts = args[0]
	case "globalknownhostsfile":
		t.note("-o %s: rtunnel reads the one known_hosts: file; put the hub's key there", kv)
	case "identityfile":
		return t.option('i', val, runAs)
	case "identitiesonly":
		t.note("-o %s: rtunnel only ever offers the identity: key", kv)
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
	case "certificatefile", "identityagent", "hostkeyalias":
		return bad("not supported yet")
	case "proxycommand":
		if strings.EqualFold(val, "none") {
			return nil
		}
		return bad("ProxyCommand runs a command to carry the connection; rtunnel dials itself: use -J (ProxyJump)")
	case "batchmode", "loglevel", "tcpkeepalive", "compression", "controlmaster", "controlpath", "controlpersist",
		"requesttty", "forwardagent", "forwardx11", "passwordauthentication", "kbdinteractiveauthentication",
		"challengeresponseauthentication", "preferredauthentications", "checkhostip", "connectionattempts",
		"verifyhostkeydns", "hashknownhosts", "updatehostkeys", "visualhostkey", "gssapiauthentication",
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

var sshTimeRE = regexp.MustCompile(`^(\d+[smhdwSMHDW]?)+$`)

// sshSeconds turns an ssh time (120, 2m, 1m30s) into a Go duration string.
func sshSeconds(v string) (string, error) {
	if !sshTimeRE.MatchString(v) {
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

// destination takes [user@]host[:port] or ssh://[user@]host[:port].
func (t *importedTunnel) destination(dest string, runAs account) error {
	user, host, port := "", dest, 0
	if strings.HasPrefix(dest, "ssh://") {
		rest := strings.TrimSuffix(strings.TrimPrefix(dest, "ssh://"), "/")
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			user, rest = rest[:at], rest[at+1:]
		}
		host = rest
		if h, p, err := net.SplitHostPort(rest); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil {
				return fmt.Errorf("%q: bad port", dest)
			}
			host, port = h, n
		}
	} else if at := strings.LastIndex(dest, "@"); at >= 0 {
		user, host = dest[:at], dest[at+1:]
	}
	if t.user == "" {
		t.user = user
	}
	if t.port == 0 {
		t.port = port
	}
	if t.name == "" {
		t.name = tunnelName(host)
	}
	if t.host == "" {
		t.host = host
	} else if t.sshConfig == "" {
		t.note("-o HostName=%s: the destination %s is replaced by it", t.host, host)
	}
	return nil
}

var notNameChar = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func tunnelName(host string) string {
	n := strings.Trim(notNameChar.ReplaceAllString(host, "-"), "-._")
	if n == "" {
		return "tunnel"
	}
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

// defaults fills what ssh would take from the account it runs as.
func (t *importedTunnel) defaults(runAs account) {
	home := func(p string) string {
		if p == "~" || strings.HasPrefix(p, "~/") {
			return filepath.Join(runAs.home, strings.TrimPrefix(p, "~"))
		}
		return p
	}
	if t.sshConfig != "" {
		// The alias is resolved from the file; only what the command line
		// said is written, and it wins as it did for ssh.
		t.sshConfig = home(t.sshConfig)
		t.identity, t.knownHosts = home(t.identity), home(t.knownHosts)
		return
	}
	t.note("ssh also read ~/.ssh/config and /etc/ssh/ssh_config; rtunnel reads no ssh_config unless told: if %s is a Host there, add ssh_config: %s", t.host, filepath.Join(runAs.home, ".ssh/config"))
	if t.user == "" {
		t.user = runAs.name
	}
	if t.identity == "" {
		t.identity = "~/.ssh/id_ed25519"
		for _, k := range []string{"id_rsa", "id_ecdsa", "id_ed25519"} {
			if _, err := os.Stat(filepath.Join(runAs.home, ".ssh", k)); err == nil {
				t.identity = "~/.ssh/" + k
				break
			}
		}
		t.note("no -i: ssh tried each default key of %s; identity: names %s (check it is the key the hub accepts)", runAs.name, t.identity)
	}
	if t.knownHosts == "" {
		t.knownHosts = "~/.ssh/known_hosts"
	}
	t.identity, t.knownHosts = home(t.identity), home(t.knownHosts)
	for i, hop := range t.jump {
		if !strings.Contains(hop, "@") && !strings.HasPrefix(hop, "ssh://") {
			t.jump[i] = runAs.name + "@" + hop
		}
	}
}

var envAssignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

var plainYAML = regexp.MustCompile(`^[A-Za-z0-9/_.@-][A-Za-z0-9/_.@:+,~=^-]*$`)

// yamlString writes s bare when YAML reads it back as the same string.
func yamlString(s string) string {
	if plainYAML.MatchString(s) && !strings.Contains(s, ": ") {
		switch strings.ToLower(s) {
		case "yes", "no", "true", "false", "on", "off", "null", "y", "n", "~":
		default:
			if _, err := strconv.ParseFloat(s, 64); err != nil {
				return s
			}
		}
	}
	return strconv.Quote(s)
}

// yaml writes the tunnel as an rtunnel config, the notes as comments.
func (t *importedTunnel) yaml(in autosshInvocation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# rtunnel config imported by rtunnel import-autossh from %s:\n", in.source)
	fmt.Fprintf(&b, "#   %s\n", strings.Join(in.argv, " "))
	for _, n := range t.notes {
		fmt.Fprintf(&b, "# - %s\n", n)
	}
	fmt.Fprintf(&b, "tunnels:\n  - name: %s\n", yamlString(t.name))
	if t.sshConfig != "" {
		fmt.Fprintf(&b, "    ssh_config: %s\n", yamlString(t.sshConfig))
		server := t.host
		if t.user != "" {
			server = t.user + "@" + server
		}
		if t.port != 0 {
			server += ":" + strconv.Itoa(t.port)
		}
		fmt.Fprintf(&b, "    server: %s\n", yamlString(server))
	} else {
		port := t.port
		if port == 0 {
			port = 22
		}
		fmt.Fprintf(&b, "    server: %s\n", yamlString(t.user+"@"+net.JoinHostPort(t.host, strconv.Itoa(port))))
	}
	if t.identity != "" {
		fmt.Fprintf(&b, "    identity: %s\n", yamlString(t.identity))
	}
	if t.knownHosts != "" {
		fmt.Fprintf(&b, "    known_hosts: %s\n", yamlString(t.knownHosts))
	}
	if len(t.jump) > 0 {
		b.WriteString("    jump:\n")
		for _, hop := range t.jump {
			fmt.Fprintf(&b, "      - %s\n", yamlString(strings.TrimSuffix(strings.TrimPrefix(hop, "ssh://"), "/")))
		}
	}
	if t.keepInterval != "" || t.keepCount != "" {
		b.WriteString("    keepalive:\n")
		if t.keepInterval != "" {
			fmt.Fprintf(&b, "      interval: %s\n", t.keepInterval)
		}
		if t.keepCount != "" {
			fmt.Fprintf(&b, "      count_max: %s\n", t.keepCount)
		}
	}
	if t.connectTimeout != "" {
		fmt.Fprintf(&b, "    connect_timeout: %s\n", t.connectTimeout)
	}
	eoff := t.exitOnForwardFailure
	if eoff == "" && t.sshConfig == "" {
		eoff = "false"
		b.WriteString("    # ssh's default; with true a refused forward ends the session, as ExitOnForwardFailure=yes\n")
	}
	if eoff != "" {
		fmt.Fprintf(&b, "    exit_on_forward_failure: %s\n", eoff)
	}
	for _, a := range t.algorithms {
		fmt.Fprintf(&b, "    %s: %s\n", a[0], yamlString(a[1]))
	}
	if len(t.forwards) > 0 {
		b.WriteString("    forwards:\n")
	}
	for _, f := range t.forwards {
		fmt.Fprintf(&b, "      - remote: %s\n        local: %s\n", yamlString(f[0]), yamlString(f[1]))
	}
	return b.String()
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
