package config

import (
	"reflect"
	"strings"
	"testing"
)

func hubsConfig(server, extra string) string {
	return "tunnels:\n  - name: a\n    server: " + server + "\n" + extra +
		"    identity: /k\n    known_hosts: /kh\n    forwards: [{remote: \"localhost:2220\", local: \"localhost:22\"}]\n"
}

func TestHubsList(t *testing.T) {
	for _, tc := range []struct {
		server, extra, mode string
	}{
		{"[t@hub1.example.org, t@hub2.example.org:2222]", "", HubsFailover},
		{"[t@hub1.example.org, t@hub2.example.org]", "    hubs: failover\n", HubsFailover},
		{"[t@hub1.example.org, t@hub2.example.org]", "    hubs: all\n", HubsAll},
		{"[t@hub1.example.org]", "", HubsFailover},
	} {
		c, err := Parse("f.yaml", []byte(hubsConfig(tc.server, tc.extra)))
		if err != nil {
			t.Fatalf("%s %s: %v", tc.server, tc.extra, err)
		}
		tn := c.Tunnels[0]
		if tn.HubMode != tc.mode {
			t.Errorf("%s %q: mode %q, want %q", tc.server, tc.extra, tn.HubMode, tc.mode)
		}
		if len(tn.Hubs) == 0 || !reflect.DeepEqual(tn.Server, tn.Hubs[0]) {
			t.Errorf("%s: Server %v, Hubs %v: Server must be the first hub", tc.server, tn.Server, tn.Hubs)
		}
		for _, h := range tn.Hubs {
			if len(h.Identities) != 1 || h.Identities[0] != "/k" || h.KnownHosts != "/kh" || h.ConnectTimeout != DefaultConnectTimeout || h.Line != 3 {
				t.Errorf("hub %v: want the tunnel's identity, known_hosts, connect_timeout and its line", h)
			}
		}
	}
	c, err := Parse("f.yaml", []byte(hubsConfig("[t@hub1.example.org, t@hub2.example.org:2222]", "")))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tunnels[0].Hubs[1].String(); got != "t@hub2.example.org:2222" {
		t.Errorf("second hub %q", got)
	}
	one, err := Parse("f.yaml", []byte(hubsConfig("t@hub1.example.org", "")))
	if err != nil || one.Tunnels[0].Hubs != nil || one.Tunnels[0].HubMode != "" {
		t.Errorf("a single server: Hubs %v, mode %q, err %v; want none", one.Tunnels[0].Hubs, one.Tunnels[0].HubMode, err)
	}
}

func TestHubsRefused(t *testing.T) {
	for _, tc := range []struct {
		data, want string
	}{
		{hubsConfig("[t@hub1.example.org, t@hub2.example.org]", "    hubs: both\n"), `f.yaml:4: tunnels[a].hubs: "both": write failover (one hub at a time, the first reachable one preferred) or all`},
		{hubsConfig("t@hub1.example.org", "    hubs: all\n"), "f.yaml:4: tunnels[a].hubs: is for a list of servers (server: [user@hub1, user@hub2]); this tunnel has one"},
		{hubsConfig("[]", ""), "f.yaml:3: tunnels[a].server: is an empty list"},
		{hubsConfig("[t@hub1.example.org, T@HUB1.example.org:22]", ""), "f.yaml:3: tunnels[a].server[1]: hub1.example.org:22 is already listed at line 3: each hub once"},
		{hubsConfig("[t@hub1.example.org, 'bad host:x']", ""), "f.yaml:3: tunnels[a].server[1]:"},
		{hubsConfig("[t@hub1.example.org, t@hub2.example.org]", "    jump: j@bastion.example.org\n"), "f.yaml:4: tunnels[a].jump: is not supported with a list of servers"},
		{hubsConfig("[t@a, t@b, t@c, t@d, t@e, t@f, t@g, t@h, t@i]", ""), "f.yaml:3: tunnels[a].server: lists 9 hubs, at most 8 are supported"},
	} {
		_, err := Parse("f.yaml", []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config:\n%s\ngot  %v\nwant %s", tc.data, err, tc.want)
		}
	}
}

// Each hub of a list binds the tunnel's ports: another tunnel cannot ask the
// second hub for them either.
func TestHubsClaimPortsOnEveryHub(t *testing.T) {
	data := hubsConfig("[t@hub1.example.org, t@hub2.example.org]", "") +
		"  - name: b\n    server: t@hub2.example.org\n    identity: /k\n    known_hosts: /kh\n    forwards: [{remote: \"localhost:2220\", local: \"localhost:22\"}]\n"
	_, err := Parse("f.yaml", []byte(data))
	if err == nil || !strings.Contains(err.Error(), `port 2220 on hub2.example.org:22 is already asked for by tunnel "a"`) {
		t.Errorf("got %v", err)
	}
}
