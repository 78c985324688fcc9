package packaging

import (
	"testing"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The shared binary is removed before goleak looks.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { daemontest.Cleanup() }))
}
