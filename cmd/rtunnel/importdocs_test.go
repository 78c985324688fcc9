package main

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// What issue 11 asks import-autossh to map: every ssh_config option rtunnel
// honours, and the command-line flags of autossh and ssh.
var (
	issueOptions = []string{"HostName", "Port", "User", "IdentityFile", "CertificateFile", "IdentityAgent", "IdentitiesOnly",
		"UserKnownHostsFile", "GlobalKnownHostsFile", "HostKeyAlias", "ProxyJump", "StrictHostKeyChecking", "HashKnownHosts",
		"ServerAliveInterval", "ServerAliveCountMax", "ConnectTimeout", "ExitOnForwardFailure", "RemoteForward", "LocalForward",
		"Ciphers", "KexAlgorithms", "MACs", "HostKeyAlgorithms", "ProxyCommand"}
	issueFlags = []string{"M", "R", "L", "J", "i", "p", "l", "F"}
)

var (
	docOption   = regexp.MustCompile("`-o ([A-Za-z]+)=")
	docFlag     = regexp.MustCompile("`-([A-Za-z0-9])(?: [^`]*)?`")
	docVariable = regexp.MustCompile("`(AUTOSSH_[A-Z_]+)`")
)

// migratingTable reads the left column of docs/MIGRATING.md's tables: the
// -o options, the flags and the AUTOSSH_ variables it names.
func migratingTable(t *testing.T) (options, flags, variables []string) {
	t.Helper()
	data, err := os.ReadFile("../../docs/MIGRATING.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	add := func(list *[]string, s string) {
		if !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		left := strings.SplitN(line, " | ", 2)[0]
		for _, m := range docOption.FindAllStringSubmatch(left, -1) {
			add(&options, m[1])
		}
		for _, m := range docFlag.FindAllStringSubmatch(left, -1) {
			if m[1] != "o" {
				add(&flags, m[1])
			}
		}
		for _, m := range docVariable.FindAllStringSubmatch(left, -1) {
			add(&variables, m[1])
		}
	}
	return options, flags, variables
}

// Every option docs/MIGRATING.md names is one import-autossh knows: it maps
// it, notes it or refuses it with its own reason, never with the catch-all
// "not supported by rtunnel import" or "unknown option"; and the doc names
// every option the issue lists.
func TestMigratingTableMatchesImport(t *testing.T) {
	options, flags, variables := migratingTable(t)
	if len(options) < 30 || len(flags) < 30 || len(variables) < 10 {
		t.Fatalf("read %d -o options, %d flags, %d AUTOSSH_ variables from docs/MIGRATING.md: has its table layout changed?", len(options), len(flags), len(variables))
	}
	for _, list := range []struct {
		want, got []string
		what      string
	}{{issueOptions, options, "-o "}, {issueFlags, flags, "-"}} {
		have := map[string]bool{}
		for _, g := range list.got {
			have[strings.ToLower(g)] = true
		}
		for _, w := range list.want {
			if !have[strings.ToLower(w)] {
				t.Errorf("docs/MIGRATING.md does not name %s%s, which issue 11 lists", list.what, w)
			}
		}
	}

	home := t.TempDir()
	run := func(env map[string]string, opts ...string) error {
		argv := append(append([]string{"autossh", "-M", "0", "-N", "-R", "2220:localhost:22"}, opts...), "u@h")
		_, err := importAutossh(autosshInvocation{argv: argv, env: env, source: "command line", runAs: account{name: "me", home: home}}, "")
		return err
	}
	for _, o := range options {
		// yes suits most; a value an option cannot take is refused with a
		// reason of that option's own, which is what this test allows.
		if err := run(map[string]string{}, "-o", o+"=yes"); err != nil && strings.Contains(err.Error(), "not supported by rtunnel import") {
			t.Errorf("MIGRATING.md names -o %s, import-autossh does not know it: %v", o, err)
		}
	}
	sort.Strings(flags)
	for _, f := range flags {
		args := []string{"-" + f}
		if strings.Contains(sshArgOptions, f) {
			args = append(args, "x")
		}
		if err := run(map[string]string{}, args...); err != nil && strings.Contains(err.Error(), "unknown option") {
			t.Errorf("MIGRATING.md names -%s, import-autossh does not know it: %v", f, err)
		}
	}
	for _, v := range variables {
		if err := run(map[string]string{v: "1"}); err != nil && strings.Contains(err.Error(), "unknown autossh variable") {
			t.Errorf("MIGRATING.md names %s, import-autossh does not know it: %v", v, err)
		}
	}
}
