package sshdtest

import (
	"fmt"
	"strconv"
	"strings"
)

// defaultSettings are the sshd_config lines every server gets unless
// Options.Extra sets the same keyword outside a Match block. sshd keeps the
// first value it reads for most keywords, so a default left in front of
// Extra would silently win over it.
var defaultSettings = [][2]string{
	{"StrictModes", "no"}, // t.TempDir() is not owned by the login user's rules
	{"PasswordAuthentication", "no"},
	{"KbdInteractiveAuthentication", "no"},
	{"PubkeyAuthentication", "yes"},
	{"PermitRootLogin", "prohibit-password"}, // tests log in as root
	{"UsePAM", "no"},
	{"LogLevel", "VERBOSE"}, // logs key fingerprints and forward requests
	{"AllowTcpForwarding", "yes"},
	{"GatewayPorts", "no"},
	{"MaxStartups", "200:30:1000"}, // tests open many connections at once
	{"MaxSessions", "50"},
	{"UseDNS", "no"},
	{"PrintMotd", "no"},
	{"PrintLastLog", "no"},
	{"Subsystem", "sftp internal-sftp"}, // a second Subsystem sftp line is fatal
}

// renderConfig builds the sshd_config text. The harness always owns Port,
// ListenAddress, HostKey and PidFile; authorizedKeys is used unless Extra
// names its own AuthorizedKeysFile.
func renderConfig(port int, listen string, hostKeys []string, pidFile, authorizedKeys, extra string) string {
	overridden := extraKeywords(extra)
	var b strings.Builder
	b.WriteString("# Written by rtunnel internal/sshdtest.\n")
	fmt.Fprintf(&b, "Port %d\n", port)
	fmt.Fprintf(&b, "ListenAddress %s\n", listen)
	for _, hk := range hostKeys {
		fmt.Fprintf(&b, "HostKey %s\n", quoteArg(hk))
	}
	fmt.Fprintf(&b, "PidFile %s\n", quoteArg(pidFile))
	if !overridden["authorizedkeysfile"] {
		// AuthorizedKeysFile expands %-tokens; a literal % must be doubled.
		fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", quoteArg(strings.ReplaceAll(authorizedKeys, "%", "%%")))
	}
	for _, kv := range defaultSettings {
		if !overridden[strings.ToLower(kv[0])] {
			fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
		}
	}
	if extra != "" {
		b.WriteString("# Options.Extra:\n")
		b.WriteString(extra)
		if !strings.HasSuffix(extra, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// extraKeywords returns the lower-cased keywords Extra sets before its first
// Match line (those inside a Match block do not replace global defaults).
func extraKeywords(extra string) map[string]bool {
	kw := map[string]bool{}
	for _, line := range strings.Split(extra, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		k, _, _ := strings.Cut(strings.ToLower(f[0]), "=")
		if k == "match" {
			break
		}
		kw[k] = true
	}
	return kw
}

// quoteArg double-quotes a path that holds spaces; sshd_config splits
// arguments on whitespace but honours double quotes.
func quoteArg(s string) string {
	if strings.ContainsAny(s, " \t") {
		return strconv.Quote(s)
	}
	return s
}
