package config

import (
	"strings"
	"testing"
)

// TestSamePortOnOtherHubs: one remote port is fine on different hubs: another
// host, another port, or the same address reached through other jump hops.
func TestSamePortOnOtherHubs(t *testing.T) {
	tunnel := func(name, server, jump string) string {
		s := "  - name: " + name + "\n    server: " + server + "\n" +
			"    identity: /k\n    known_hosts: /kh\n    forwards: [{remote: \"localhost:2220\", local: \"localhost:22\"}]\n"
		if jump != "" {
			s += "    jump: " + jump + "\n"
		}
		return s
	}
	data := "tunnels:\n" +
		tunnel("a", "t@hub.example.org", "") +
		tunnel("b", "t@hub2.example.org", "") +
		tunnel("c", "t@hub.example.org:2222", "") +
		tunnel("d", "t@10.0.0.5", "j@bastion-a.example.org") +
		tunnel("e", "t@10.0.0.5", "j@bastion-b.example.org") +
		tunnel("f", "t@10.0.0.5", "")
	if _, err := Parse("f.yaml", []byte(data)); err != nil {
		t.Fatalf("refused:\n%v", err)
	}
	// The same chain twice is the same hub.
	data += tunnel("g", "t@10.0.0.5", "j@BASTION-a.example.org:22")
	_, err := Parse("f.yaml", []byte(data))
	if err == nil || !strings.Contains(err.Error(), `port 2220 on bastion-a.example.org:22 -> 10.0.0.5:22 is already asked for by tunnel "d"`) {
		t.Errorf("the same jump chain and server twice: got %v", err)
	}
}
