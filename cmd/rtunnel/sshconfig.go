package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/rtunnel/rtunnel/config"
	"github.com/spf13/cobra"
)

// sshConfigOpts are ssh-config's flags.
type sshConfigOpts struct {
	configs  []string
	user     string
	userFor  []string
	jumpUser string
	jumpName string
	identity string
	onServer bool
}

func newSSHConfigCmd(stdout io.Writer) *cobra.Command {
	var o sshConfigOpts
	cmd := &cobra.Command{
		Use:   "ssh-config --config FILE [--config FILE...]",
		Short: "Print ~/.ssh/config Host blocks for the master to reach each forwarded sshd",
		Long: "Reads rtunnel configs (a remote's, several remotes', or one fleet file with a tunnel per\n" +
			"remote) and prints the guide's ~/.ssh/config blocks for the master: one \"Host vpn-jump\"\n" +
			"per server the tunnels forward on (Appendix B's vpn; with jump: hops it gets a ProxyJump\n" +
			"of its own), and one Host per forward, named after the tunnel (TUNNEL-PORT when a tunnel\n" +
			"has several forwards), with HostName/Port of the forwarded port and ProxyJump vpn-jump.\n" +
			"Then `ssh remote-a` just works. With --on-server the master is the server itself\n" +
			"(Direct topology, Appendix A's master): no jump host, no ProxyJump.",
		Example: "  rtunnel ssh-config --config fleet.yaml --user admin --jump-user vpnuser >> ~/.ssh/config\n" +
			"  rtunnel ssh-config --config remote-a.yaml --config remote-b.yaml --user-for remote-b=pi",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := sshConfig(o)
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			_, err = io.WriteString(stdout, out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.configs, "config", "c", nil, "rtunnel config whose tunnels forward the remotes' sshd (repeatable)")
	f.StringVar(&o.user, "user", "", "login user on the remotes (User line of each remote host; omitted if empty)")
	f.StringArrayVar(&o.userFor, "user-for", nil, "HOST=USER: login user for one remote host (repeatable)")
	f.StringVar(&o.jumpUser, "jump-user", "", "the master's user on the jump host (default: the tunnel's server user)")
	f.StringVar(&o.jumpName, "jump-name", "vpn-jump", "Host name of the jump host block (a second server gets -2, ...)")
	f.StringVar(&o.identity, "identity", "", "IdentityFile for every block (the master's key)")
	f.BoolVar(&o.onServer, "on-server", false, "the master is the tunnels' server: no jump host, no ProxyJump")
	return cmd
}

// jumpHost is one server the tunnels forward on, as a Host block.
type jumpHost struct {
	name   string
	server config.Endpoint
	via    []config.Endpoint
}

func sshConfig(o sshConfigOpts) (string, error) {
	if len(o.configs) == 0 {
		return "", errors.New("--config FILE is required: an rtunnel config whose tunnels forward the remotes' sshd")
	}
	users := map[string]string{}
	for _, uf := range o.userFor {
		h, u, ok := strings.Cut(uf, "=")
		if !ok || h == "" || u == "" {
			return "", fmt.Errorf("--user-for %q: want HOST=USER", uf)
		}
		users[h] = u
	}
	var (
		jumps  []*jumpHost
		remote strings.Builder
		names  = map[string]string{} // Host name -> where it came from
	)
	jumpFor := func(t config.Tunnel) *jumpHost {
		for _, j := range jumps {
			if j.server.String() == t.Server.String() && hopsString(j.via) == hopsString(t.Jump) {
				return j
			}
		}
		name := o.jumpName
		if len(jumps) > 0 {
			name = fmt.Sprintf("%s-%d", o.jumpName, len(jumps)+1)
		}
		j := &jumpHost{name: name, server: t.Server, via: t.Jump}
		jumps = append(jumps, j)
		return j
	}
	for _, path := range o.configs {
		cfg, err := config.Load(path)
		if err != nil {
			return "", err
		}
		for _, t := range cfg.Tunnels {
			var j *jumpHost
			if !o.onServer {
				j = jumpFor(t)
			}
			for _, f := range t.Forwards {
				if f.RemotePath != "" || f.Remote.Port == 0 {
					// No fixed host:port to name: a socket, or a port the hub picks per session.
					fmt.Fprintf(&remote, "\n# tunnel %s in %s: %s has no fixed port on %s; no Host block (a port-0 forward's port is in rtunnel status and rtunnel_forward_allocated_port)\n",
						t.Name, path, f, t.Server.Host)
					continue
				}
				name := t.Name
				if len(t.Forwards) > 1 {
					name = t.Name + "-" + strconv.Itoa(f.Remote.Port)
				}
				from := fmt.Sprintf("tunnel %s in %s", t.Name, path)
				if prev, dup := names[name]; dup {
					return "", fmt.Errorf("two Host blocks named %s (%s and %s): tunnel names must differ across the configs", name, prev, from)
				}
				names[name] = from
				fmt.Fprintf(&remote, "\n# %s: %s on %s -> %s (%s)\n", name, f.Remote, t.Server.Host, f.Local, from)
				fmt.Fprintf(&remote, "Host %s\n    HostName %s\n    Port %d\n", name, forwardHost(f.Remote.Host), f.Remote.Port)
				if u := userOr(users[name], o.user); u != "" {
					fmt.Fprintf(&remote, "    User %s\n", u)
				}
				if j != nil {
					fmt.Fprintf(&remote, "    ProxyJump %s\n", j.name)
				}
				if o.identity != "" {
					fmt.Fprintf(&remote, "    IdentityFile %s\n    IdentitiesOnly yes\n", o.identity)
				}
			}
		}
	}
	for h := range users {
		if _, ok := names[h]; !ok {
			return "", fmt.Errorf("--user-for %s: no such Host (the hosts are named after the tunnels)", h)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by rtunnel ssh-config from %s; append to ~/.ssh/config on the master.\n", strings.Join(o.configs, ", "))
	for _, j := range jumps {
		fmt.Fprintf(&b, "\n# Jump host: the server the tunnels forward on (shared by all remote entries)\n")
		fmt.Fprintf(&b, "Host %s\n    HostName %s\n    Port %d\n    User %s\n", j.name, j.server.Host, j.server.Port, userOr(o.jumpUser, j.server.User))
		if len(j.via) > 0 {
			fmt.Fprintf(&b, "    ProxyJump %s\n", hopsString(j.via))
		}
		if o.identity != "" {
			fmt.Fprintf(&b, "    IdentityFile %s\n    IdentitiesOnly yes\n", o.identity)
		}
	}
	b.WriteString(remote.String())
	return b.String(), nil
}

// forwardHost is where the master finds a forwarded port on the server: the
// bind address, or localhost when the forward binds every address.
func forwardHost(h string) string {
	switch h {
	case "", "*", "0.0.0.0", "::":
		return "localhost"
	}
	return h
}

// hopsString writes hops as ProxyJump does: user@host:port,...
func hopsString(hops []config.Endpoint) string {
	parts := make([]string, len(hops))
	for i, h := range hops {
		parts[i] = h.User + "@" + net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
	}
	return strings.Join(parts, ",")
}

func userOr(u, def string) string {
	if u != "" {
		return u
	}
	return def
}
