// Package netns builds throwaway test networks: one network namespace per
// host, all joined by a bridge in a switch namespace, with addresses from
// 198.18.0.0/24 (the benchmarking range) that exist only inside them. Faults
// (a blackholed link, TCP resets) are nftables tables in a host's namespace.
// Everything is removed in t.Cleanup, also when the test fails.
//
// Test-only; it imports the standard library and internal/sshdtest (for the
// skip-or-fail rule).
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// Lab is a set of hosts on one bridge.
type Lab struct {
	t      testing.TB
	prefix string
	sw     string
	hosts  []*Host
}

// Host is one network namespace with an eth0 on the lab's bridge.
type Host struct {
	Name string // as given to New
	NS   string // namespace name, for `ip netns exec`
	IP   string // its address on the bridge
	lab  *Lab
}

// New creates a lab with the named hosts. It needs root, ip and nft; when
// they are missing the test skips, or fails with RTUNNEL_REQUIRE_SSHD=1.
func New(t testing.TB, names ...string) *Lab {
	t.Helper()
	sshdtest.RequireTools(t, "ip", "nft")
	if os.Geteuid() != 0 {
		sshdtest.RequireTools(t, "root-privileges-for-netns")
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	l := &Lab{t: t, prefix: "rt" + hex.EncodeToString(rnd[:])}
	l.sw = l.prefix + "-sw"
	t.Cleanup(l.destroy)
	l.ip("netns", "add", l.sw)
	l.ip("-n", l.sw, "link", "set", "lo", "up")
	l.ip("-n", l.sw, "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.sw, "link", "set", "br0", "up")
	for i, name := range names {
		h := &Host{Name: name, NS: l.prefix + "-" + name, IP: fmt.Sprintf("198.18.0.%d", i+1), lab: l}
		l.hosts = append(l.hosts, h)
		a, b := fmt.Sprintf("%s%da", l.prefix, i), fmt.Sprintf("%s%db", l.prefix, i)
		l.ip("netns", "add", h.NS)
		l.ip("-n", h.NS, "link", "set", "lo", "up")
		l.ip("link", "add", a, "type", "veth", "peer", "name", b)
		l.ip("link", "set", a, "netns", h.NS)
		l.ip("link", "set", b, "netns", l.sw)
		l.ip("-n", l.sw, "link", "set", b, "master", "br0")
		l.ip("-n", l.sw, "link", "set", b, "up")
		l.ip("-n", h.NS, "link", "set", a, "name", "eth0")
		l.ip("-n", h.NS, "addr", "add", h.IP+"/24", "dev", "eth0")
		l.ip("-n", h.NS, "link", "set", "eth0", "up")
	}
	return l
}

// Host returns the named host.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	l.t.Fatalf("netns: no host %q in the lab", name)
	return nil
}

func (l *Lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("netns: ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// destroy kills every process left in the lab's namespaces and deletes
// them (which removes their veths and nft tables).
func (l *Lab) destroy() {
	all := append([]string{}, l.sw)
	for _, h := range l.hosts {
		all = append(all, h.NS)
	}
	for _, ns := range all {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for _, ns := range all {
		deadline := time.Now().Add(5 * time.Second)
		for {
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			if len(bytes.TrimSpace(out)) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
			l.t.Errorf("netns: deleting %s: %v %s", ns, err, out)
		}
		os.RemoveAll(filepath.Join("/etc/netns", ns))
	}
}

// Command runs name inside the host's namespace.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Run runs a command in the host's namespace and fails the test on error.
func (h *Host) Run(name string, args ...string) string {
	h.lab.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		h.lab.t.Fatalf("netns %s: %s %s: %v\n%s", h.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nft loads a ruleset into the host's namespace.
func (h *Host) nft(script string) {
	h.lab.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := h.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		h.lab.t.Fatalf("netns %s: nft: %v\n%s\n%s", h.Name, err, out, script)
	}
}

const faultTable = "rtunnel_fault"

// Blackhole silently drops every packet in and out of the host's eth0, as
// a dead link does: no RST, no ICMP.
func (h *Host) Blackhole() {
	h.Heal()
	h.nft(fmt.Sprintf(`table inet %[1]s {
	chain in { type filter hook input priority -100; policy accept; iifname "eth0" drop; }
	chain out { type filter hook output priority -100; policy accept; oifname "eth0" drop; }
}
`, faultTable))
}

// RejectReset answers every TCP packet arriving on eth0 with a reset. (A
// rule on output as well would drop the very resets it generates.)
func (h *Host) RejectReset() {
	h.Heal()
	h.nft(fmt.Sprintf(`table inet %[1]s {
	chain in { type filter hook input priority -100; policy accept; iifname "eth0" meta l4proto tcp reject with tcp reset; }
}
`, faultTable))
}

// Heal removes any fault from the host.
func (h *Host) Heal() {
	h.lab.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Deleting a table that does not exist fails; that is fine.
	_ = h.Command(ctx, "nft", "delete", "table", "inet", faultTable).Run()
}

// SetHosts writes /etc/hosts as seen by processes started in this host's
// namespace (ip netns exec bind-mounts /etc/netns/NS/hosts).
func (h *Host) SetHosts(lines ...string) {
	h.lab.t.Helper()
	dir := filepath.Join("/etc/netns", h.NS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.lab.t.Fatal(err)
	}
	content := "127.0.0.1 localhost\n::1 localhost\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(content), 0o644); err != nil {
		h.lab.t.Fatal(err)
	}
}
