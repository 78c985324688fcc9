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
		caFile, principals  string
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
			"  rtunnel authorized-key --role b-master --ports 2220,2221,2222 --pubkey master.pub\n" +
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
			line, err := authkeys.Line(authkeys.Spec{Role: r, Ports: list, From: from, CertAuthority: caFile != "", Principals: principals}, data)
			if err != nil {
				return fail(fmt.Errorf("%s: %v", pubFile, err))
			}
			fmt.Fprintln(stdout, line)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "the key's role (see the list above)")
	f.StringVar(&port, "port", "", "the port the role listens on or opens, e.g. 2220")
	f.StringVar(&ports, "ports", "", "several ports, comma-separated (b-master: every remote's port)")
	f.StringVar(&from, "from", "", `optional from="..." source addresses or CIDRs, comma-separated`)
	f.StringVar(&pubFile, "pubkey", "", "the key's public key file (.pub)")
	f.StringVar(&caFile, "ca", "", "a CA's public key: the line (cert-authority) accepts user certificates it signs, instead of one key")
	f.StringVar(&principals, "principals", "", `with --ca: principals="..." the certificate must hold (default: the login user)`)
	return cmd
}
