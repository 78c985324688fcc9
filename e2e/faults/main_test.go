// Package faults is rtunnel's fault matrix: the real rtunnel binary against
// a real OpenSSH sshd, each in its own network namespace, with real faults
// between them (nftables drop and reset rules, a killed sshd, a broken
// /etc/hosts, a revoked key, a dead local target), plus integrity, load,
// soak and shutdown under traffic. docs/RELIABILITY.md lists what each test
// proves and the figures it measured.
//
// Every test bounds its waits and removes its namespaces, nft tables and
// processes in t.Cleanup, also when it fails. Traffic stays on loopback and
// in the test's own namespaces (198.18.0.0/24 exists only there).
package faults

import (
	"os"
	"testing"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	daemontest.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
