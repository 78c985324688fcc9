package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/netns"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// hubSSHD is what the hub changes from sshd's compiled-in defaults: only
// what a test sshd needs (a fixed authorized_keys file, one allowed user)
// and the defaults that sshdtest raises for its other tests, put back.
// MaxStartups is OpenSSH's 10:30:100 unless -maxstartups says otherwise
// (deploy/hub's snippet sets 100:30:1000); MaxSessions 10 is the default;
// the listen backlog is sshd's fixed 128.
const hubSSHD = `PermitRootLogin no
MaxStartups %[3]s
MaxSessions 10
AllowUsers %[1]s
AuthorizedKeysFile %[2]s
`

var flagMaxStartups = flag.String("maxstartups", "10:30:100", "fleet: the hub's MaxStartups (OpenSSH's default; deploy/hub sets 100:30:1000)")

// echoAddr is every remote's forward target: an echo service in the hub's
// namespace, so a byte sent to a forwarded port comes back only if the
// whole path (hub listener, session, rtunnel, target) works.
const echoAddr = "127.0.0.1:7"

// hub is the namespace with the stock sshd, its login user and counters.
type hub struct {
	t       testing.TB
	ns      string // the network namespace everything runs in
	host    *netns.Host
	user    string // the non-root login user of every remote
	uid     int
	keysDir string // world-readable: sshd reads authorized_keys as user
	srv     *sshdtest.Server
	anchor  int // a process in ns whose /proc/PID/net shows the namespace's sockets
	kh      string
}

// newHub creates the namespace, the login user, the echo target and an
// sshd with OpenSSH's defaults on 127.0.0.1:22, with SYNs to port 22
// counted by nft. Everything goes in t.Cleanup.
func newHub(t *testing.T, dir string) *hub {
	t.Helper()
	sshdtest.Require(t)
	sshdtest.RequireTools(t, "useradd", "userdel", "nft")
	lab := netns.New(t, "hub")
	h := &hub{t: t, host: lab.Host("hub")}
	h.ns = h.host.NS

	h.addUser(t)
	keysDir, err := os.MkdirTemp("", "rtunnel-fleet-keys-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(keysDir) })
	if err := os.Chmod(keysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.keysDir = keysDir
	h.writeAuthorizedKeys(t, nil)

	h.startAnchor(t)
	h.startEcho(t)
	h.nft(t, `table inet rtunnel_fleet {
	counter syn22 { }
	chain in {
		type filter hook input priority -150; policy accept;
		tcp dport 22 tcp flags & (fin | syn | rst | ack) == syn counter name "syn22"
	}
}
`)
	h.srv = sshdtest.Start(t, sshdtest.Options{Name: "hub", NetNS: h.ns, ListenAddr: "127.0.0.1", Port: 22,
		Extra: fmt.Sprintf(hubSSHD, h.user, filepath.Join(keysDir, "authorized_keys"), *flagMaxStartups)})
	h.kh = filepath.Join(dir, "known_hosts")
	h.srv.WriteKnownHosts(t, h.kh, "127.0.0.1")
	return h
}

// addUser creates a system user with no home and no shell login, so that
// every session has sshd's unprivileged child as on a real hub.
func (h *hub) addUser(t *testing.T) {
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	h.user = "rtfleet" + hex.EncodeToString(rnd[:])
	// Password "*": no password login, but not "!" (locked), which sshd
	// refuses without PAM even for keys.
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
		"--shell", "/usr/sbin/nologin", "--password", "*", h.user).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", h.user, err, out)
	}
	// Registered before sshd's cleanup, so it runs after sshd is gone.
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", h.user).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", h.user, err, out)
		}
	})
	out, err := exec.Command("id", "-u", h.user).Output()
	if err != nil {
		t.Fatalf("id -u %s: %v", h.user, err)
	}
	h.uid, _ = strconv.Atoi(strings.TrimSpace(string(out)))
}

func (h *hub) writeAuthorizedKeys(t testing.TB, lines []string) {
	t.Helper()
	path := filepath.Join(h.keysDir, "authorized_keys")
	data := strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(path+".tmp", []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// startAnchor keeps a process in the namespace: /proc/ANCHOR/net/tcp lists
// the namespace's sockets even while sshd is down.
func (h *hub) startAnchor(t *testing.T) {
	cmd := h.host.Command(context.Background(), "sleep", "86400")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	h.anchor = cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
}

// startEcho serves echoAddr in the namespace from this process.
func (h *hub) startEcho(t *testing.T) {
	ln, err := listenIn(h.ns, echoAddr)
	if err != nil {
		t.Fatalf("echo target: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func (h *hub) nft(t testing.TB, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := h.host.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
}

var packetsRE = regexp.MustCompile(`"packets":\s*(\d+)`)

// resetSYNs reads the SYN counter of port 22 and zeroes it.
func (h *hub) resetSYNs(t testing.TB) int {
	t.Helper()
	out := h.host.Run("nft", "-j", "reset", "counter", "inet", "rtunnel_fleet", "syn22")
	m := packetsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("nft reset counter: no packets in %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// listening returns the TCP ports listening on 127.0.0.1 in the namespace.
func (h *hub) listening() map[int]bool {
	ports := map[int]bool{}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(h.anchor) + "/net/tcp")
	if err != nil {
		return ports
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		// sl local_address rem_address st ...; 0A is LISTEN, addresses are hex.
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
			ports[int(p)] = true
		}
	}
	return ports
}

// reboot kills sshd and every session at once, as a crash does, keeps it
// down for outage, and starts it again. It returns the SYNs that reached
// port 22 while it was down and when it listened again. silent: as a power
// cut does, the clients hear nothing of it (no FIN or reset from the killed
// sessions, nothing answers while it is down) and the hub's kernel forgets
// their connections: port 22 is blackholed from before the kill until sshd
// listens again, the sessions' sockets are destroyed (ss -K), and the
// clients find out from their keepalive, which then meets a reset.
func (h *hub) reboot(t *testing.T, outage time.Duration, silent bool) (syns int, back time.Time) {
	t.Helper()
	h.resetSYNs(t)
	if silent {
		h.nft(t, `table inet rtunnel_fleet_cut {
	chain in { type filter hook input priority -200; policy accept; tcp dport 22 drop; tcp sport 22 drop; }
}
`)
		t.Cleanup(func() { h.host.Run("nft", "delete", "table", "inet", "rtunnel_fleet_cut") })
	}
	h.srv.Kill()
	if silent {
		// A power cut also takes the hub kernel's state: the killed
		// sessions' sockets (closing, their FIN or reset blackholed) go
		// too, or a client's first packets after the outage would meet
		// them instead of a kernel that knows nothing.
		h.host.Run("ss", "-K", "sport = :22")
	}
	time.Sleep(outage) // the outage itself, not a synchronisation
	syns = h.resetSYNs(t)
	h.srv.Restart(t)
	if silent {
		h.host.Run("nft", "delete", "table", "inet", "rtunnel_fleet_cut")
	}
	return syns, time.Now()
}

// sessionProcs counts the hub's processes by kind: a logged-in session
// is a privilege-separated child running as the login user; everything
// else below the listener is a monitor or a pre-auth child.
func (h *hub) sessionProcs() (sessions int, pids []int) {
	pids = h.srv.SessionPIDs()
	for _, pid := range pids {
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+strconv.Itoa(pid), &st) == nil && int(st.Uid) == h.uid {
			sessions++
		}
	}
	return sessions, pids
}
