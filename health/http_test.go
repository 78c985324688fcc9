package health

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// waitErr waits for a Serve result, failing the test if it takes too long.
func waitErr(t *testing.T, errc <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return within 5s", what)
		return nil
	}
}

func TestServeListenerServesAndShutsDown(t *testing.T) {
	h := New("test")
	h.AddTunnel("hub", []string{fwSSH})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Handler(ln.Addr()) // a second Handler on the same registry must not panic
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- h.ServeListener(ctx, ln) }()

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `rtunnel_tunnel_up{tunnel="hub"} 0`) {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}

	cancel() // the client still holds an idle keep-alive conn: Shutdown must close it
	if err := waitErr(t, errc, "ServeListener"); err != nil {
		t.Fatalf("ServeListener after cancel: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after shutdown")
	}
}
