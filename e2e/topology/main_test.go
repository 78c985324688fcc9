// Package topology runs the setup guide's three topologies end to end, each
// host in its own network namespace (internal/netns) with its own loopback,
// so the guide's ports (2210, 2220..2223) and sshd on port 22 are used as
// written: the real rtunnel binary, real OpenSSH sshd on every host (with
// deploy/hub's sshd snippet on the hubs), authorized_keys lines written by
// `rtunnel authorized-key`, and real ssh clients logging in through the
// chains. It needs root, ip, nft and OpenSSH; tests skip without them, or
// fail with RTUNNEL_REQUIRE_SSHD=1.
package topology

import (
	"testing"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The shared binary is removed before goleak looks.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { daemontest.Cleanup() }))
}
