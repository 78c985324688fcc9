package main

import (
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/config"
)

func TestSameTunnelIgnoresLinesOnly(t *testing.T) {
	parse := func(extra string) config.Tunnel {
		t.Helper()
		cfg, err := config.Parse("/etc/rtunnel/rtunnel.yaml", []byte(extra+`tunnels:
  - name: a
    server: u@h:2222
    identity: /k
    known_hosts: /kh
    jump: [j@vpn]
    forwards: [{remote: "localhost:2220", local: "localhost:22"}]
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Tunnels[0]
	}
	a, moved := parse(""), parse("\n\n# moved down\n")
	if a.Line == moved.Line || a.Forwards[0].Line == moved.Forwards[0].Line {
		t.Fatalf("test setup: lines did not move")
	}
	if !sameTunnel(a, moved) {
		t.Errorf("a tunnel that only moved in the file counts as changed")
	}
	if a.Forwards[0].Line == 0 || moved.Forwards[0].Line == 0 {
		t.Errorf("sameTunnel cleared the callers' line numbers")
	}
	changed := parse("")
	changed.Keepalive.Interval = 7 * time.Second
	if sameTunnel(a, changed) {
		t.Errorf("a changed keepalive counts as unchanged")
	}
}
