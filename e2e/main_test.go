// Package e2e runs the real rtunnel binary against real OpenSSH sshd servers
// on loopback, with real ssh clients logging in through the tunnel.
package e2e

import (
	"testing"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The shared binary is removed before goleak looks.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { daemontest.Cleanup() }))
}
