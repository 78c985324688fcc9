package netns

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLabPingAndBlackhole(t *testing.T) {
	l := New(t, "a", "b")
	a, b := l.Host("a"), l.Host("b")
	if out := a.Run("ping", "-c", "1", "-W", "2", b.IP); !strings.Contains(out, "1 received") {
		t.Fatalf("ping a->b: %s", out)
	}
	b.Blackhole()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Command(ctx, "ping", "-c", "1", "-W", "1", b.IP).Run(); err == nil {
		t.Fatalf("ping through a blackholed link succeeded")
	}
	b.Heal()
	if out := a.Run("ping", "-c", "1", "-W", "2", b.IP); !strings.Contains(out, "1 received") {
		t.Fatalf("ping after heal: %s", out)
	}
	b.SetHosts("198.18.0.1 hub.test")
	if out := b.Run("getent", "hosts", "hub.test"); !strings.HasPrefix(out, "198.18.0.1") {
		t.Fatalf("netns /etc/hosts not used: %q", out)
	}
}
