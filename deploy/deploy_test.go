package deploy

import (
	"context"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// TestCheckScript runs deploy/check.sh: systemd-analyze verify on the units,
// sysusers/tmpfiles on an empty root, promtool check and test on the alert
// rules, sshd -t on the hub snippet, the dashboard's JSON and metric names,
// and shellcheck. With RTUNNEL_REQUIRE_SSHD=1 (CI) a missing tool fails.
func TestCheckScript(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "check.sh")
	out, err := cmd.CombinedOutput()
	t.Logf("check.sh:\n%s", out)
	if err != nil {
		t.Fatalf("check.sh failed: %v", err)
	}
	m := regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed, (\d+) skipped$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("check.sh printed no summary line")
	}
	if string(m[2]) != "0" {
		t.Fatalf("check.sh: %s failed", m[2])
	}
	if string(m[1]) == "0" {
		t.Fatalf("check.sh ran no check")
	}
}
