package fleet

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The binary goes before goleak looks; VerifyTestMain exits after.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { removeBinary() }))
}
