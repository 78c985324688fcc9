package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rtunnel/rtunnel/internal/authkeys"
	"github.com/spf13/cobra"
)

func newAuthorizedKeyCmd(stdout io.Writer) *cobra.Command {
	var (
		role, pubFile, from string
		port                string
		ports               string
		anyPort             bool
		opens, sockets      []string
		caFile, principals  string
		metricsPort         string
	)
	var help strings.Builder
	for _, r := range authkeys.Roles() {
		fmt.Fprintf(&help, "  %-16s %s\n", r, r.Describe())
	}
	cmd := &cobra.Command{
		Use:   "authorized-key --role ROLE --port N --pubkey FILE",
		Short: "Print the locked-down authorized_keys line for a key's role on a hub",
		Long: "Prints the exact authorized_keys line of the setup guide's role table (docs/TOPOLOGIES.md):\n" +
			"restrict,port-forwarding, the role's permitlisten or permitopen for each port, the other\n" +
			"direction blocked with \"" + authkeys.Block + "\", and command=\"/bin/false\".\n\nRoles:\n" + help.String() +
			"\nValues that OpenSSH rejects in authorized_keys (permitlisten=\"none\", \"\", \"localhost:0\") are\n" +
			"refused: sshd would reject the whole key and log only \"Failed publickey\".",
		Example: "  rtunnel authorized-key --role b-remote --port 2221 --pubkey id_remote_b.pub >> ~tunnel/.ssh/authorized_keys\n" +
			"  rtunnel authorized-key --role b-remote --port 2221 --metrics-port 9221 --pubkey id_remote_b.pub\n" +
			"  rtunnel authorized-key --role b-master --ports 2220,2221,2222 --pubkey master.pub\n" +
			"  rtunnel authorized-key --role direct-remote --any-port --permitopen db.internal:5432 --pubkey id.pub\n" +
			"  rtunnel authorized-key --role direct-remote --socket /run/hub/remote-7.sock --pubkey id.pub\n" +
			"  rtunnel authorized-key --role direct-remote --port 2220 --ca user_ca.pub --principals remote-7",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fail := func(err error) error { return &exitError{code: exitConfig, err: err} }
			r, err := authkeys.ParseRole(role)
			if err != nil {
				return fail(err)
			}
			var list []int
			if cmd.Flags().Changed("port") {
				p, err := authkeys.ParsePort(port)
				if err != nil {
					return fail(fmt.Errorf("--port: %v", err))
				}
				list = append(list, p)
			}
			if cmd.Flags().Changed("ports") {
				ps, err := authkeys.ParsePorts(ports)
				if err != nil {
					return fail(fmt.Errorf("--ports: %v", err))
				}
				list = append(list, ps...)
			}
			if cmd.Flags().Changed("metrics-port") {
				if !r.Listens() {
					return fail(fmt.Errorf("--metrics-port: role %s opens ports (ProxyJump) and forwards none; "+
						"give it to the remote's key (a role that listens), whose rtunnel forwards its /metrics", r))
				}
				p, err := authkeys.ParsePort(metricsPort)
				if err != nil {
					return fail(fmt.Errorf("--metrics-port: %v", err))
				}
				list = append(list, p)
			}
			flag := "--pubkey"
			switch {
			case pubFile != "" && caFile != "":
				return fail(fmt.Errorf("--pubkey and --ca exclude each other: a line trusts one key, or the certificates one CA signs"))
			case caFile != "":
				pubFile, flag = caFile, "--ca"
			case pubFile == "":
				return fail(fmt.Errorf("--pubkey FILE is required (the key's .pub file), or --ca CA.pub for certificates signed by a CA"))
			}
			data, err := os.ReadFile(pubFile)
			if err != nil {
				return fail(fmt.Errorf("%s: %v", flag, err))
			}
			for _, o := range opens {
				if strings.HasPrefix(o, "/") {
					return fail(fmt.Errorf("--permitopen %s: permitopen cannot name a socket path; sshd checks a local forward to a hub socket "+
						"against the key's permitopen list and refuses it whenever the line has any permitopen: such a key needs a line without permitopen "+
						"(which opens every TCP target too) and AllowStreamLocalForwarding local or yes for its account", o))
				}
			}
			for _, p := range sockets {
				if !strings.HasPrefix(p, "/") {
					return fail(fmt.Errorf("--socket %q: give the absolute socket path on the hub, as in the forward's remote: key", p))
				}
			}
			spec := authkeys.Spec{Role: r, Ports: list, From: from, AnyPort: anyPort, Opens: opens, SocketsOnly: len(sockets) > 0,
				CertAuthority: caFile != "", Principals: principals}
			line, err := authkeys.Line(spec, data)
			if err != nil {
				return fail(fmt.Errorf("%s: %v", pubFile, err))
			}
			fmt.Fprintln(stdout, line)
			if len(sockets) > 0 {
				fmt.Fprint(cmd.ErrOrStderr(), socketAdvice(sockets))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "the key's role (see the list above)")
	f.StringVar(&port, "port", "", "the port the role listens on or opens, e.g. 2220")
	f.StringVar(&ports, "ports", "", "several ports, comma-separated (b-master: every remote's port)")
	f.StringVar(&metricsPort, "metrics-port", "", "also let the key forward its rtunnel's /metrics to localhost:N on the hub "+
		"for the hub's Prometheus (the fleet view, docs/FLEET.md); the remote's config needs the matching forward")
	f.StringVar(&from, "from", "", `optional from="..." source addresses or CIDRs, comma-separated`)
	f.StringVar(&pubFile, "pubkey", "", "the key's public key file (.pub)")
	f.BoolVar(&anyPort, "any-port", false, `the key may ask the hub to pick a port (forwards with remote: localhost:0): permitlisten="localhost:*"`)
	f.StringArrayVar(&opens, "permitopen", nil, "a local forward's connect: target (host:port) the key may open through the hub; repeat for each")
	f.StringArrayVar(&sockets, "socket", nil, "a Unix socket path the key forwards (remote: /path); permitlisten does not govern these, see the note printed")
	f.StringVar(&caFile, "ca", "", "a CA's public key: the line (cert-authority) accepts user certificates it signs, instead of one key")
	f.StringVar(&principals, "principals", "", `with --ca: principals="..." the certificate must hold (default: the login user)`)
	return cmd
}

// socketAdvice says what limits Unix socket forwards, which the printed
// line cannot: OpenSSH's permitlisten applies to TCP ports only.
func socketAdvice(paths []string) string {
	return fmt.Sprintf(`note: permitlisten does not govern Unix socket forwards (%s). With port-forwarding on this line the key may
bind a socket at any path its hub user can create. What limits them is on the hub:
  - sshd_config: AllowStreamLocalForwarding remote (or yes) for this user, e.g. in a Match User block, and
    AllowStreamLocalForwarding no everywhere else;
  - StreamLocalBindUnlink yes in the same block, or a reconnect finds the old socket file and is refused;
  - the socket directory's owner and mode: only the tunnel user may write there (deploy/hub/HUB.md);
  - StreamLocalBindMask (default 0177) for who may connect to the socket.
`, strings.Join(paths, ", "))
}
