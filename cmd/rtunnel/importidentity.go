package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The options that say how ssh proved who it is and how it trusted the hub:
// -i, CertificateFile, IdentityAgent, IdentitiesOnly, HostKeyAlias,
// StrictHostKeyChecking, HashKnownHosts and the known_hosts files.

// importedIdentity is what the command line said about keys and trust.
type importedIdentity struct {
	identities     []string // -i and IdentityFile, in order, each once
	certificate    string
	identityAgent  string // a socket path, or SSH_AUTH_SOCK as written
	identitiesOnly string // "yes", "no" or "" (not given)
	knownHosts     string
	hostKeyAlias   string
	acceptNew      bool
	hashKnownHosts bool
}

// addIdentity is -i KEY: ssh offers every -i in order, as rtunnel's
// identity list does; a repeated key is offered once.
func (t *importedTunnel) addIdentity(path string) error {
	if err := checkImportedPath("-i", path); err != nil {
		return err
	}
	for _, p := range t.identities {
		if p == path {
			return nil
		}
	}
	t.identities = append(t.identities, path)
	return nil
}

// identityOption maps the -o options of importedIdentity; handled is false
// for any other key.
func (t *importedTunnel) identityOption(key string, args []string, kv string) (handled bool, err error) {
	val := strings.Join(args, " ")
	bad := func(why string) error { return fmt.Errorf("-o %s: %s", kv, why) }
	oneValue, ours := identityOptions[key]
	if !ours {
		return false, nil
	}
	if oneValue && len(args) != 1 {
		return true, bad("takes one value, as in ssh")
	}
	switch key {
	case "identityfile":
		return true, t.addIdentity(val)
	case "certificatefile":
		if t.certificate != "" && t.certificate != val {
			return true, bad("a second certificate: rtunnel offers one named certificate (a KEY-cert.pub beside each identity is offered anyway): keep one")
		}
		t.certificate = val
		return true, checkImportedPath("-o CertificateFile", val)
	case "identityagent":
		switch {
		case strings.EqualFold(val, "none"):
			// rtunnel asks no agent unless identity_agent names one.
			t.identityAgent = ""
		case val == agentFromEnvVar:
			t.identityAgent = val
			t.note("-o %s: rtunnel reads SSH_AUTH_SOCK from its own environment at each connect: give the service the variable (Environment=SSH_AUTH_SOCK=/path in the unit) or write the socket's path", kv)
		case strings.HasPrefix(val, "$"):
			return true, bad("rtunnel reads no environment variable but SSH_AUTH_SOCK: write the socket's path")
		default:
			t.identityAgent = val
			return true, checkImportedPath("-o IdentityAgent", val)
		}
	case "identitiesonly":
		b, err := yesNo(val)
		if err != nil {
			return true, bad(err.Error())
		}
		t.identitiesOnly = map[bool]string{true: "yes", false: "no"}[b]
	case "hostkeyalias":
		t.hostKeyAlias = val
	case "stricthostkeychecking":
		switch strings.ToLower(val) {
		case "yes", "true":
			t.acceptNew = false
		case "ask":
			t.acceptNew = false
			t.note("-o %s: ssh had no terminal to ask on, so an unknown host key failed as with yes; rtunnel's default is the same (strict_host_key_checking: yes)", kv)
		case "accept-new":
			t.acceptNew = true
		default:
			return true, bad("rtunnel never connects to a host whose key it cannot check: use accept-new to learn the hub's key on the first connect, or add it to known_hosts (ssh-keyscan) and use yes")
		}
	case "hashknownhosts":
		b, err := yesNo(val)
		if err != nil {
			return true, bad(err.Error())
		}
		t.hashKnownHosts = b
	case "userknownhostsfile":
		if len(args) != 1 {
			return true, bad("rtunnel reads one known_hosts file: merge them into one")
		}
		if args[0] == "/dev/null" || strings.EqualFold(args[0], "none") {
			return true, bad("an empty known_hosts means no host key check; rtunnel always checks: name the file that holds the hub's key")
		}
		t.knownHosts = args[0]
		return true, checkImportedPath("-o UserKnownHostsFile", args[0])
	case "globalknownhostsfile":
		t.note("-o %s: rtunnel reads the one known_hosts: file; put the hub's key there", kv)
	}
	return true, nil
}

// identityOptions are the -o keys identityOption maps, each with whether
// it takes exactly one value (the known_hosts files take a list).
var identityOptions = map[string]bool{
	"identityfile": true, "certificatefile": true, "identityagent": true, "identitiesonly": true, "hostkeyalias": true,
	"stricthostkeychecking": true, "hashknownhosts": true, "userknownhostsfile": false, "globalknownhostsfile": false,
}

// agentFromEnvVar is IdentityAgent's (and identity_agent's) word for "the
// socket $SSH_AUTH_SOCK names".
const agentFromEnvVar = "SSH_AUTH_SOCK"

func yesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("want yes or no")
}

// checkImportedPath refuses what ssh would have read differently from a
// service: a path relative to ssh's working directory, or one with %
// tokens ssh expanded.
func checkImportedPath(what, p string) error {
	if strings.Contains(p, "%") {
		return fmt.Errorf("%s %s: ssh expands %%-tokens here; rtunnel does not: write the path as ssh expanded it (ssh -G shows it)", what, p)
	}
	if p != "~" && !strings.HasPrefix(p, "~/") && !filepath.IsAbs(p) {
		return fmt.Errorf("%s %s: the path is relative: ssh took it from its current directory, a service's is /: write the full path", what, p)
	}
	return nil
}

// identityDefaults fills the keys ssh would have offered when the command
// line named none, and says where rtunnel's choice differs from ssh's.
func (t *importedTunnel) identityDefaults(runAs account) {
	home := func(p string) string {
		if p == "~" || strings.HasPrefix(p, "~/") {
			return filepath.Join(runAs.home, strings.TrimPrefix(p, "~"))
		}
		return p
	}
	defer func() {
		for i, p := range t.identities {
			t.identities[i] = home(p)
		}
		t.certificate, t.identityAgent, t.knownHosts = home(t.certificate), home(t.identityAgent), home(t.knownHosts)
	}()
	if t.hashKnownHosts && !t.acceptNew {
		t.note("-o HashKnownHosts=yes: rtunnel writes to known_hosts only with strict_host_key_checking: accept-new; hash_known_hosts: true is kept for that")
	}
	if t.sshConfig != "" {
		switch {
		case len(t.identities) > 0:
			t.note("-i with -F: ssh offered the command line's keys before the Host's IdentityFile lines; rtunnel's identity: replaces them: list every key the hub may accept")
		case t.identityAgent != "":
			t.note("-o IdentityAgent with -F: rtunnel's identity_agent: replaces the Host's IdentityFile and IdentityAgent lines: every key of the agent is offered, no key file")
		}
		return
	}
	switch {
	case t.identityAgent != "" && len(t.identities) > 0 && t.identitiesOnly != "yes":
		t.note("identity_agent with identity: rtunnel offers only the identity: keys (through the agent when it holds the private key of a .pub), as IdentitiesOnly=yes; ssh also offered every other key of the agent")
	case t.identityAgent != "" && len(t.identities) == 0:
		if t.identitiesOnly == "yes" {
			t.note("-o IdentitiesOnly=yes without -i: ssh offered only the agent's keys for its default key files; rtunnel offers every key of the agent: add identity: KEY.pub to restrict it")
		} else {
			t.note("identity_agent without -i: rtunnel offers the agent's keys; ssh also tried %s's default key files (add identity: to offer one, then only that key is offered)", runAs.name)
		}
	case len(t.identities) == 0:
		id := "~/.ssh/id_ed25519"
		for _, k := range []string{"id_rsa", "id_ecdsa", "id_ed25519"} {
			if _, err := os.Stat(filepath.Join(runAs.home, ".ssh", k)); err == nil {
				id = "~/.ssh/" + k
				break
			}
		}
		t.identities = []string{id}
		t.note("no -i: ssh tried each default key of %s; identity: names %s (check it is the key the hub accepts)", runAs.name, id)
	}
	if t.knownHosts == "" {
		t.knownHosts = "~/.ssh/known_hosts"
	}
}
