package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// With 60 tunnels down (with long names), every STATUS= datagram stays
// under systemd's 4096-byte limit and still counts them all: before, the
// text listed every tunnel, grew past 4096 bytes, and systemd ignored it
// while `systemctl status` kept showing the old "60/60 tunnels up".
func TestStatusWithSixtyTunnelsDownFitsADatagram(t *testing.T) {
	t.Parallel()
	sshdtest.Require(t)
	const n = 60
	dir := t.TempDir()
	key := sshdtest.NewKey(t, dir, "id", "ed25519")
	dead := sshdtest.FreePort(t)
	kh := filepath.Join(dir, "known_hosts")
	// Any host key will do: nothing answers on the port.
	if err := os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", dead, key.PublicLine)), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("log: {level: info, format: json}\ntunnels:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: remote-with-a-rather-long-descriptive-name-%02d\n    server: root@127.0.0.1:%d\n", i, dead)
		fmt.Fprintf(&b, "    identity: %s\n    known_hosts: %s\n", key.Private, kh)
		fmt.Fprintf(&b, "    backoff: {initial: 1s, max: 5s, multiplier: 2, jitter: 0.1, reset_after: 10s}\n")
		fmt.Fprintf(&b, "    forwards: [{remote: \"localhost:%d\", local: \"127.0.0.1:22\"}]\n", 20000+i)
	}
	cfg := filepath.Join(dir, "rtunnel.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := newNotifySocket(t)
	daemontest.Start(t, []string{"up", "--config", cfg}, "NOTIFY_SOCKET="+ns.path)
	seen := ns.expect(t, "READY=1", 30*time.Second)
	deadline := time.After(20 * time.Second)
	for {
		var m string
		if len(seen) > 0 {
			m, seen = seen[0], seen[1:]
		} else {
			select {
			case m = <-ns.msgs:
			case <-deadline:
				t.Fatal("no STATUS=0/60 tunnels up ... within 20s")
			}
		}
		if !strings.HasPrefix(m, "STATUS=") {
			continue
		}
		if len(m) >= 4096 {
			t.Fatalf("a STATUS datagram of %d bytes: systemd ignores it", len(m))
		}
		if strings.HasPrefix(m, "STATUS=0/60 tunnels up; ") && strings.Contains(m, ": down (") && strings.HasSuffix(m, "; and 55 more") {
			t.Logf("%d bytes: %s", len(m), m)
			return
		}
	}
}
