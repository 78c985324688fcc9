package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveOn serves h's public endpoints on a real listener at addr.
func serveOn(t *testing.T, h *Health, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := waitErr(t, errc, "ServeListener"); err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
	return ln.Addr().String()
}

// getWithHost sends GET path to addr with the given Host header, as a
// browser whose page's name resolves to addr's IP would.
func getWithHost(t *testing.T, addr, host, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300)) // enough to tell; /metrics is long
	return resp.StatusCode, string(body)
}

func TestHostHeaderMustNameTheLoopbackListener(t *testing.T) {
	h := New("test")
	h.AddTunnel("hub", []string{fwSSH})
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		addr := serveOn(t, h, listen)
		ip, port, _ := net.SplitHostPort(addr)
		bracketed := ip
		if strings.Contains(ip, ":") {
			bracketed = "[" + ip + "]"
		}
		other := "8080"
		if port == other {
			other = "8081"
		}
		// Another port is what a scrape through a reverse tunnel names
		// (the hub's end of the forward), so only the name counts.
		good := []string{"localhost", "localhost:" + port, "LOCALHOST:" + port, bracketed, bracketed + ":" + port,
			"localhost:" + other, bracketed + ":" + other, "127.0.0.2:" + port, "[::1]:" + other, "127.0.0.1:" + other}
		bad := []string{
			"rebind.example.com:" + port, "rebind.example.com", "localhost.example.com:" + port,
			"0.0.0.0:" + port, "192.0.2.1:" + port, "[fe80::1%lo]:" + port, "127.0.0.1.example.com:" + port,
		}
		for _, path := range []string{"/metrics", "/healthz", "/readyz", "/status"} {
			for _, host := range good {
				if code, body := getWithHost(t, addr, host, path); code != http.StatusOK && code != http.StatusServiceUnavailable {
					t.Errorf("listen %s, Host %q, GET %s: %d %q, want it served", addr, host, path, code, body)
				}
			}
			for _, host := range bad {
				code, body := getWithHost(t, addr, host, path)
				if code != http.StatusMisdirectedRequest || !strings.Contains(body, "Host header must name this listener") {
					t.Errorf("listen %s, Host %q, GET %s: %d %q, want 421", addr, host, path, code, body)
				}
			}
		}
	}
}

// TestRequestWithoutHostRefused: HTTP/1.0 lets a client omit Host.
func TestRequestWithoutHostRefused(t *testing.T) {
	addr := serveOn(t, New("test"), "127.0.0.1:0")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	reply, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(reply), "HTTP/1.0 421 ") {
		t.Errorf("GET without Host: %q", reply)
	}
}

func TestHostGuardOffForAnExposedListener(t *testing.T) {
	// metrics.allow_remote: reachable from the network anyway, scraped by any name.
	h := New("test")
	addr := serveOn(t, h, "0.0.0.0:0")
	_, port, _ := net.SplitHostPort(addr)
	if code, body := getWithHost(t, "127.0.0.1:"+port, "metrics.example.com:"+port, "/healthz"); code != http.StatusOK {
		t.Errorf("exposed listener, Host by DNS name: %d %q", code, body)
	}
}

// TestPublicEndpointsShowNoErrorText: the HTTP endpoints carry what any
// local user may see; error texts with paths, fingerprints and peer
// addresses stay on the control socket.
func TestPublicEndpointsShowNoErrorText(t *testing.T) {
	h, srv := newTestHealth(t)
	h.AddTunnel("hub", []string{fwSSH})
	h.AddTunnel("edge", []string{fwWeb})
	secrets := []string{"/etc/rtunnel/id_ed25519", "SHA256:abcdefSECRET", "198.51.100.9", "refused our key"}
	h.Retrying("hub", 3, time.Minute, errors.New("198.51.100.9:22 refused our key SHA256:abcdefSECRET (/etc/rtunnel/id_ed25519)"))
	h.Stopped("edge", errors.New("known_hosts /etc/rtunnel/known_hosts: HOST KEY CHANGED SHA256:abcdefSECRET"))
	h.ReloadResult(errors.New("/etc/rtunnel/rtunnel.yaml:3: unknown key 198.51.100.9"))

	for _, path := range []string{"/metrics", "/readyz", "/status", "/healthz"} {
		_, body := get(t, srv, path)
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s shows %q:\n%s", path, s, body)
			}
		}
		if path == "/status" && (!strings.Contains(body, `"state": "retrying"`) || !strings.Contains(body, `"state": "stopped"`) ||
			!strings.Contains(body, `"attempt": 3`) || strings.Contains(body, "last_error") || strings.Contains(body, "reload")) {
			t.Errorf("/status:\n%s", body)
		}
	}
	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || body != "hub: retrying\nedge: stopped\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}

	d := h.DetailedReport(ControlInfo{Version: "v9", PID: 42, Config: "/etc/rtunnel/rtunnel.yaml"})
	got := fmt.Sprintf("%+v", d)
	for _, s := range secrets {
		if !strings.Contains(got, s) {
			t.Errorf("the detailed report lacks %q: %s", s, got)
		}
	}
	if !d.Detailed || d.Version != "v9" || d.PID != 42 || d.LastReload == nil || d.LastReload.OK ||
		!d.Tunnels[0].LastErrorAt.Equal(clock) {
		t.Errorf("detailed report: %+v", d)
	}
}
