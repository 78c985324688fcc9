package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

var plainYAML = lazyRegexp(`^[A-Za-z0-9/_.@-][A-Za-z0-9/_.@:+,~=^-]*$`)

// yamlString writes s bare when YAML reads it back as the same string.
func yamlString(s string) string {
	if plainYAML().MatchString(s) && !strings.Contains(s, ": ") {
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
	t.identityYAML(&b)
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
	if len(t.localForwards) > 0 {
		b.WriteString("    local_forwards:\n")
	}
	for _, f := range t.localForwards {
		fmt.Fprintf(&b, "      - listen: %s\n        connect: %s\n", yamlString(f[0]), yamlString(f[1]))
	}
	return b.String()
}

// identityYAML writes the keys and trust settings the command line gave.
func (t *importedTunnel) identityYAML(b *strings.Builder) {
	switch len(t.identities) {
	case 0:
	case 1:
		fmt.Fprintf(b, "    identity: %s\n", yamlString(t.identities[0]))
	default:
		b.WriteString("    identity:\n")
		for _, p := range t.identities {
			fmt.Fprintf(b, "      - %s\n", yamlString(p))
		}
	}
	for _, kv := range [][2]string{{"certificate", t.certificate}, {"identity_agent", t.identityAgent}, {"known_hosts", t.knownHosts}, {"host_key_alias", t.hostKeyAlias}} {
		if kv[1] != "" {
			fmt.Fprintf(b, "    %s: %s\n", kv[0], yamlString(kv[1]))
		}
	}
	if t.acceptNew {
		b.WriteString("    strict_host_key_checking: accept-new\n")
	}
	if t.hashKnownHosts {
		b.WriteString("    hash_known_hosts: true\n")
	}
}
