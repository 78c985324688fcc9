package health

import (
	"errors"
	"testing"
)

// A port-0 forward's port: exported while up, in /status, and back to 0
// when the forward or the whole session goes down.
func TestForwardAllocatedPort(t *testing.T) {
	h, srv := newTestHealth(t)
	const fw = "localhost:0->localhost:22"
	h.AddTunnel("hub", []string{fw})
	assertValue(t, scrape(t, srv), 0, "rtunnel_forward_allocated_port", "tunnel", "hub", "forward", fw)

	h.Connected("hub")
	h.ForwardUp("hub", fw)
	h.ForwardAllocated("hub", fw, 40123)
	assertValue(t, scrape(t, srv), 40123, "rtunnel_forward_allocated_port", "tunnel", "hub", "forward", fw)
	if got := h.Snapshot()[0].Forwards[0].AllocatedPort; got != 40123 {
		t.Errorf("status allocated_port %d, want 40123", got)
	}

	h.ForwardAllocated("hub", fw, 0)
	assertValue(t, scrape(t, srv), 0, "rtunnel_forward_allocated_port", "tunnel", "hub", "forward", fw)

	// A session reported down without the forward's own down event.
	h.ForwardAllocated("hub", fw, 40124)
	h.Disconnected("hub", errors.New("connection lost"))
	assertValue(t, scrape(t, srv), 0, "rtunnel_forward_allocated_port", "tunnel", "hub", "forward", fw)
	if got := h.Snapshot()[0].Forwards[0].AllocatedPort; got != 0 {
		t.Errorf("status allocated_port %d after disconnect, want 0", got)
	}
	// A forward nobody declared is dropped, never a new series.
	h.ForwardAllocated("hub", "localhost:0->elsewhere:22", 1)
	if _, ok := lookup(scrape(t, srv), "rtunnel_forward_allocated_port", "tunnel", "hub", "forward", "localhost:0->elsewhere:22"); ok {
		t.Error("an undeclared forward got a series")
	}
}
