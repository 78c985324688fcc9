package bench

import (
	"testing"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Cleanup must run before goleak looks; VerifyTestMain would exit first.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { daemontest.Cleanup() }))
}
