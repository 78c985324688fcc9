package tunnel

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Session returns only after its goroutines have: a leak fails the
// package.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
