// Package e2e runs the real rtunnel binary against real OpenSSH sshd servers
// on loopback, with real ssh clients logging in through the tunnel.
package e2e

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
