package packaging

import (
	"os"
	"testing"
)

// sizeBudgetARM64 is issue 13's ceiling for the stripped linux/arm64 binary,
// the typical Raspberry Pi and router build. A dependency that brings
// megabytes (client_golang and protobuf did: 2.7 MB) fails here first.
const sizeBudgetARM64 = 9_000_000

// TestReleaseSize logs every target's stripped binary size and holds the
// arm64 one to its budget.
func TestReleaseSize(t *testing.T) {
	dir := releaseDir(t)
	for _, tg := range releaseTargets(t) {
		fi, err := os.Stat(releaseFile(t, dir, "rtunnel-*-linux-"+tg.name))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("linux/%-8s %11d bytes", tg.name, fi.Size())
		if tg.name == "arm64" && fi.Size() >= sizeBudgetARM64 {
			t.Errorf("stripped linux/arm64 binary is %d bytes, over the %d budget: see docs/PERFORMANCE.md \"Binary size\" and scripts/binsize.sh arm64",
				fi.Size(), sizeBudgetARM64)
		}
	}
}
