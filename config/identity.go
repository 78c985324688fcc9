package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

const (
	hintAgent       = "the ssh-agent socket, e.g. /run/rtunnel/agent.sock, or SSH_AUTH_SOCK for the socket that variable names"
	hintCertificate = "a user certificate file, e.g. /etc/rtunnel/id_ed25519-cert.pub"
	agentFromEnv    = "SSH_AUTH_SOCK" // as OpenSSH's IdentityAgent SSH_AUTH_SOCK
)

// auth holds the YAML nodes of the keys that say how an endpoint proves
// who it is and how it trusts the server; nil when absent.
type auth struct {
	identity, certificate, agent, knownHosts, hostKeyAlias, strict, hash *yaml.Node
}

// fields are auth's entries of a mapping's field table.
func (a *auth) fields(f map[string]func(*yaml.Node, string)) map[string]func(*yaml.Node, string) {
	f["identity"] = func(n *yaml.Node, _ string) { a.identity = n }
	f["certificate"] = func(n *yaml.Node, _ string) { a.certificate = n }
	f["identity_agent"] = func(n *yaml.Node, _ string) { a.agent = n }
	f["known_hosts"] = func(n *yaml.Node, _ string) { a.knownHosts = n }
	f["host_key_alias"] = func(n *yaml.Node, _ string) { a.hostKeyAlias = n }
	f["strict_host_key_checking"] = func(n *yaml.Node, _ string) { a.strict = n }
	f["hash_known_hosts"] = func(n *yaml.Node, _ string) { a.hash = n }
	return f
}

// apply decodes what was written onto ep. With required, identity (or
// identity_agent) and known_hosts must be there; a hop inherits them.
func (d *decoder) applyAuth(parent *yaml.Node, key string, a auth, ep *Endpoint, required bool) {
	if a.agent != nil {
		ep.IdentityAgent = d.agentPath(parent, a.agent, key+".identity_agent")
	}
	switch {
	case a.identity != nil:
		ep.Identities = d.identities(parent, a.identity, key+".identity")
	case required && a.agent == nil:
		d.fail(parent, key+".identity", "missing: %s (or identity_agent: an ssh-agent socket)", hintIdentity)
	}
	if a.certificate != nil {
		ep.Certificate = d.requiredPath(parent, a.certificate, key+".certificate", hintCertificate)
	}
	if a.knownHosts != nil || required {
		ep.KnownHosts = d.requiredPath(parent, a.knownHosts, key+".known_hosts", hintKnownHosts)
	}
	if a.hostKeyAlias != nil {
		if s, ok := d.str(a.hostKeyAlias, key+".host_key_alias"); ok {
			if err := checkHost(s); err != nil {
				d.fail(a.hostKeyAlias, key+".host_key_alias", "%v", err)
			}
			ep.HostKeyAlias = s
		}
	}
	if a.strict != nil {
		ep.AcceptNew = d.strictHostKeyChecking(a.strict, key+".strict_host_key_checking")
	}
	if a.hash != nil {
		ep.HashKnownHosts = d.boolean(a.hash, key+".hash_known_hosts")
	}
}

// identities is one key file or a list of them, tried in order.
func (d *decoder) identities(parent, n *yaml.Node, key string) []string {
	if n.Kind != yaml.SequenceNode {
		if p := d.requiredPath(parent, n, key, hintIdentity); p != "" {
			return []string{p}
		}
		return nil
	}
	if len(n.Content) == 0 {
		d.fail(n, key, "is an empty list: %s", hintIdentity)
		return nil
	}
	var out []string
	seen := map[string]int{}
	for i, item := range n.Content {
		ik := fmt.Sprintf("%s[%d]", key, i)
		p := d.requiredPath(n, item, ik, hintIdentity)
		if p == "" {
			continue
		}
		if line, dup := seen[p]; dup {
			d.fail(item, ik, "%s is already listed at line %d: each key is offered once", item.Value, line)
			continue
		}
		seen[p] = item.Line
		out = append(out, p)
	}
	return out
}

// agentPath is a socket path, or SSH_AUTH_SOCK kept as is: the variable is
// read at each connect.
func (d *decoder) agentPath(parent, n *yaml.Node, key string) string {
	if n.Tag == "!!str" && n.Value == agentFromEnv {
		return agentFromEnv
	}
	return d.requiredPath(parent, n, key, hintAgent)
}

// strictHostKeyChecking is yes (the default) or accept-new; "no" is
// refused: rtunnel never trusts a host it cannot check.
func (d *decoder) strictHostKeyChecking(n *yaml.Node, key string) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		if n.Value == "true" {
			return false
		}
		d.fail(n, key, "%s: rtunnel never connects to a host whose key it cannot check: write yes, or accept-new to learn an unknown host's key once", n.Value)
		return false
	}
	s, ok := d.str(n, key)
	if !ok {
		return false
	}
	switch s {
	case "yes":
		return false
	case "accept-new":
		return true
	case "no", "off", "ask":
		d.fail(n, key, "%q is not supported: rtunnel never connects to a host whose key it cannot check, nor asks: write yes, or accept-new to learn an unknown host's key once", s)
	default:
		d.fail(n, key, "%q is not one of yes, accept-new", s)
	}
	return false
}
