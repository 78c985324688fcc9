package config

import (
	"strings"
	"testing"
)

// TestAliasValuesWithinLimits: durations and counts taken from an ssh_config
// alias get the same ranges as written ones, and its RemoteForwards claim
// hub ports like forwards: do.
func TestAliasValuesWithinLimits(t *testing.T) {
	dir := aliasFiles(t, `Host hub
    HostName hub.example.net
    User tunnel
    IdentityFile @DIR@/id_hub
    UserKnownHostsFile @DIR@/known_hosts
    ServerAliveInterval 100000
    ServerAliveCountMax 5000
    ConnectTimeout 90000
    RemoteForward 2220 localhost:22
`)
	_, err := parseIn(t, dir, "ssh_config: @DIR@/ssh_config\ntunnels:\n  - name: hub\n    server: hub\n")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"ServerAliveInterval (" + dir + "/ssh_config:6 ServerAliveInterval): 27h46m40s is above the maximum 24h",
		"ServerAliveCountMax (" + dir + "/ssh_config:7 ServerAliveCountMax): 5000 is out of range 1-1000",
		"ConnectTimeout (" + dir + "/ssh_config:8 ConnectTimeout): 25h is above the maximum 24h",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}

	// The alias's RemoteForward 2220 and a direct tunnel to the same hub.
	dir = aliasFiles(t, "Host hub\n    HostName hub.example.net\n    User tunnel\n    IdentityFile @DIR@/id_hub\n"+
		"    UserKnownHostsFile @DIR@/known_hosts\n    RemoteForward 2220 localhost:22\n")
	_, err = parseIn(t, dir, `tunnels:
  - name: alias
    ssh_config: @DIR@/ssh_config
    server: hub
  - name: direct
    server: tunnel@HUB.example.net
    identity: @DIR@/id_hub
    known_hosts: @DIR@/known_hosts
    forwards: [{remote: "127.0.0.1:2220", local: "localhost:22"}]
`)
	want := `tunnels[direct].forwards[0].remote: port 2220 on hub.example.net:22 is already asked for by tunnel "alias" at line 4`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}
}
