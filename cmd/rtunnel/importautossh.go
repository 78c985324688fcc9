package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

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
	name       string
	user, host string
	port       int
	importedIdentity
	sshConfig            string
	jump                 []string
	forwards             [][2]string // remote, local
	localForwards        [][2]string // listen, connect
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
	for len(argv) > 0 && envAssignment().MatchString(argv[0]) {
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
	if len(t.forwards) == 0 && len(t.localForwards) == 0 && t.sshConfig == "" {
		return "", errors.New("no -R or -L (or RemoteForward/LocalForward) forward: a tunnel without a forward has nothing to keep up")
	}
	if len(t.jump) > 0 && t.sshConfig != "" {
		return "", fmt.Errorf("-J with -F: ssh resolves each hop as a Host of %s, rtunnel's jump: takes user@host[:port]: move the hops to a ProxyJump line of the destination's Host block", t.sshConfig)
	}
	t.defaults(in.runAs)
	return t.yaml(in), nil
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

var notNameChar = lazyRegexp(`[^A-Za-z0-9_.-]+`)

func tunnelName(host string) string {
	n := strings.Trim(notNameChar().ReplaceAllString(host, "-"), "-._")
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
	if t.sshConfig != "" {
		// The alias is resolved from the file; only what the command line
		// said is written, and it wins as it did for ssh.
		if t.sshConfig == "~" || strings.HasPrefix(t.sshConfig, "~/") {
			t.sshConfig = filepath.Join(runAs.home, strings.TrimPrefix(t.sshConfig, "~"))
		}
		t.identityDefaults(runAs)
		return
	}
	t.note("ssh also read ~/.ssh/config and /etc/ssh/ssh_config; rtunnel reads no ssh_config unless told: if %s is a Host there, add ssh_config: %s", t.host, filepath.Join(runAs.home, ".ssh/config"))
	if t.user == "" {
		t.user = runAs.name
	}
	t.identityDefaults(runAs)
	for i, hop := range t.jump {
		if !strings.Contains(hop, "@") && !strings.HasPrefix(hop, "ssh://") {
			t.jump[i] = runAs.name + "@" + hop
		}
	}
}

var envAssignment = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_]*=`)
