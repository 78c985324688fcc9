package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/health"
)

func TestStatusLastErrorSaysWhenAndWhetherRecovered(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	fw := []health.ForwardStatus{{Name: "localhost:2220->localhost:22", Up: true}}
	for _, tc := range []struct {
		name string
		t    health.TunnelStatus
		want string
	}{
		{"never failed", health.TunnelStatus{State: health.StateUp, Since: now.Add(-time.Hour)}, "-"},
		{"up after the error", health.TunnelStatus{State: health.StateUp, Since: now.Add(-10 * time.Minute),
			LastError: "dial tcp 192.0.2.1:22: connect:\nconnection refused", LastErrorAt: now.Add(-12 * time.Minute)},
			"12m0s ago, recovered since: dial tcp 192.0.2.1:22: connect: connection refused"},
		{"down now", health.TunnelStatus{State: health.StateRetrying, Since: now.Add(-time.Minute),
			LastError: "EOF", LastErrorAt: now.Add(-time.Minute)}, "1m0s ago: EOF"},
		{"an older daemon without the time", health.TunnelStatus{State: health.StateUp, LastError: "EOF"}, "EOF"},
	} {
		if got := lastError(tc.t, now); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		tc.t.Name, tc.t.Forwards = "hub", fw
		var out bytes.Buffer
		printStatus(&out, []health.TunnelStatus{tc.t}, true, now)
		if !strings.Contains(out.String(), tc.want+"\n") {
			t.Errorf("%s: table lacks %q:\n%s", tc.name, tc.want, out.String())
		}
	}
}

func TestStatusHeaderShowsARefusedReload(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	rep := health.Report{
		Detailed: true, Version: "v1.2.3", PID: 4242, Config: "/etc/rtunnel/rtunnel.yaml", Started: now.Add(-time.Hour),
		LastReload: &health.ReloadStatus{At: now.Add(-2 * time.Minute), Error: "/etc/rtunnel/rtunnel.yaml:3: unknown key \"tunels\"\nsecond problem"},
		Tunnels:    []health.TunnelStatus{{Name: "hub", State: health.StateUp, Since: now.Add(-time.Hour)}},
	}
	var out bytes.Buffer
	printReport(&out, rep, statusSource{socket: "/run/rtunnel/control.sock"}, now)
	for _, want := range []string{
		"rtunnel v1.2.3 (pid 4242) running /etc/rtunnel/rtunnel.yaml since ",
		": REFUSED, the tunnels below still run the previous config; the file on disk has problems:\n" +
			"  /etc/rtunnel/rtunnel.yaml:3: unknown key \"tunels\"\n  second problem\n",
		"\nhub  ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	printReport(&out, health.Report{Tunnels: rep.Tunnels}, statusSource{socket: "/run/rtunnel/control.sock", address: "127.0.0.1:9810"}, now)
	if !strings.HasPrefix(out.String(), "public view from http://127.0.0.1:9810/status: no error texts\n") || strings.Contains(out.String(), "LAST ERROR") {
		t.Errorf("public view header:\n%s", out.String())
	}
}
