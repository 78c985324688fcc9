package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// nxdomainServer answers every DNS query on 127.0.0.1:53 with NXDOMAIN,
// standing for a resolver that does not know the hub's name. It counts
// the queries, so the test knows the name was really looked up there.
func nxdomainServer(t *testing.T) *atomic.Int64 {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:53")
	if err != nil {
		sshdtest.RequireTools(t, "free-udp-port-53-on-127.0.0.1")
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		queries atomic.Int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if r := nxdomain(buf[:n]); r != nil {
				queries.Add(1)
				_, _ = pc.WriteTo(r, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return &queries
}

// nxdomain turns a query into its NXDOMAIN reply: the header with QR, RA
// and RCODE 3, and the question as asked, nothing else.
func nxdomain(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5 // the root label, QTYPE, QCLASS
	if end > len(q) {
		return nil
	}
	r := append([]byte(nil), q[:end]...)
	r[2] = 0x80 | q[2]&0x01 // a response, RD as asked
	r[3] = 0x80 | 3         // recursion available, NXDOMAIN
	clear(r[6:12])          // no answer, authority or additional records
	return r
}

// TestCheckConnectUnresolvableName: a hub name that does not resolve is
// reported as such, not as "nothing accepts connections", and exits 1
// (DNS may come back; rtunnel up retries). rtunnel runs in a private mount
// namespace whose /etc/resolv.conf points at nxdomainServer.
func TestCheckConnectUnresolvableName(t *testing.T) {
	sshdtest.RequireTools(t, "unshare", "mount")
	if os.Geteuid() != 0 {
		sshdtest.RequireTools(t, "root-privileges-for-unshare")
	}
	w := newDirect(t, directOpts{})
	queries := nxdomainServer(t)
	const name = "hub.rtunnel-test.example"
	// known_hosts vouches for the name, so only the lookup can fail.
	kh := filepath.Join(w.dir, "known_hosts_byname")
	lines := w.hub.KnownHostsLines(name)
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(w.dir, "byname.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`tunnels:
  - name: hub
    server: root@%s:%d
    identity: %s
    known_hosts: %s
    connect_timeout: 5s
    forwards:
      - {remote: "localhost:2220", local: "%s"}
`, name, w.hub.Port, w.tunnelKey.Private, kh, w.remote.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(w.dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/resolv.conf && exec "$2" check --connect --config "$3"`,
		"sh", resolv, daemontest.Binary(t), cfg)
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", "GODEBUG=netdns=go")
	done := make(chan struct{})
	var (
		out []byte
		err error
	)
	go func() { defer close(done); out, err = cmd.CombinedOutput() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("check --connect did not end within 30s:\n%s", out)
	}
	t.Logf("check --connect:\n%s", out)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("check --connect: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"FAIL  connect root@" + name,
		"fix: the name " + name + " does not resolve on this machine: check its spelling in the config, and this machine's DNS (getent hosts " + name + ")",
		"it may be transient",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check --connect lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "accepts connections at") {
		t.Errorf("an unresolvable name reads as a refused port:\n%s", out)
	}
	if queries.Load() == 0 {
		t.Errorf("no DNS query reached the test resolver:\n%s", out)
	}
}
