package health

import "testing"

// A failover tunnel's hub in use: 1 for it, 0 for the other hubs, in
// /status and gone with the tunnel.
func TestHubInUse(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("remote", []string{"localhost:2221->localhost:22"})
	hubs := []string{"vpn1:22", "vpn2:22"}
	h.HubInUse("remote", "", hubs)
	s := scrape(t, srv)
	assertValue(t, s, 0, "rtunnel_hub_in_use", "tunnel", "remote", "hub", "vpn1:22")
	assertValue(t, s, 0, "rtunnel_hub_in_use", "tunnel", "remote", "hub", "vpn2:22")
	h.HubInUse("remote", "vpn2:22", hubs)
	s = scrape(t, srv)
	assertValue(t, s, 0, "rtunnel_hub_in_use", "tunnel", "remote", "hub", "vpn1:22")
	assertValue(t, s, 1, "rtunnel_hub_in_use", "tunnel", "remote", "hub", "vpn2:22")
	if st := h.Snapshot()[0]; st.Hub != "vpn2:22" {
		t.Errorf("status hub %q, want vpn2:22", st.Hub)
	}
	// The metrics show it to anyone: so does the public report.
	if st := h.PublicReport().Tunnels[0]; st.Hub != "vpn2:22" {
		t.Errorf("public report hub %q, want vpn2:22", st.Hub)
	}
	h.RemoveTunnel("remote")
	for _, smp := range scrape(t, srv) {
		if smp.name == "rtunnel_hub_in_use" {
			t.Errorf("series left after RemoveTunnel: %+v", smp)
		}
	}
}
