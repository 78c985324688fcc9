package main

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/tunnel"
)

// TestStepFixNamesAnUnresolvableHost: a name that does not resolve is not
// "nothing accepts connections". The errors are shaped as the tunnel
// package returns them for a failed first-hop dial.
func TestStepFixNamesAnUnresolvableHost(t *testing.T) {
	hop := &tunnel.Endpoint{User: "tunnel", Host: "hub.example.org", Port: 22}
	step := func(err error) tunnel.Step {
		return tunnel.Step{Name: "connect " + hop.String(), Err: err, Hop: hop}
	}
	notFound := &tunnel.DialError{Hop: hop.String(), Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "no such host", Name: "hub.example.org", IsNotFound: true}}}
	got := stepFix(step(notFound))
	if !strings.HasPrefix(got, "the name hub.example.org does not resolve on this machine") || strings.Contains(got, "accepts connections") {
		t.Errorf("NXDOMAIN: %q", got)
	}
	dnsDown := &tunnel.DialError{Hop: hop.String(), Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &net.DNSError{Err: "read udp 127.0.0.1:53: connection refused", Name: "hub.example.org", IsTemporary: true}}}
	if got := stepFix(step(dnsDown)); !strings.HasPrefix(got, "resolving hub.example.org failed") {
		t.Errorf("DNS server down: %q", got)
	}
	timeout := &tunnel.TimeoutError{Step: "TCP connect", Hop: hop.String(), After: 5 * time.Second}
	if got := stepFix(step(timeout)); !strings.HasPrefix(got, "no answer from hub.example.org:22 within connect_timeout") {
		t.Errorf("timeout: %q", got)
	}
}

// TestProbeAdviceLivesInCmd: the setup guide's words are cmd's, not tunnel's.
func TestProbeAdviceLivesInCmd(t *testing.T) {
	src := readFile(t, "../../tunnel/probe.go")
	for _, s := range []string{"rtunnel authorized-key", "Appendix A", "Fix:", "sshd log"} {
		if strings.Contains(src, s) {
			t.Errorf("tunnel/probe.go contains %q: user-facing advice belongs in cmd/rtunnel/checkfix.go", s)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
