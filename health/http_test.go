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
	_ = h.Handler() // a second Handler on the same registry must not panic
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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

func TestServeShutsDownOnCancel(t *testing.T) {
	h := New("test")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Serve(ctx, "127.0.0.1:0") }()
	cancel()
	if err := waitErr(t, errc, "Serve"); err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}

func TestServeReturnsListenErrorAtOnce(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	h := New("test")
	errc := make(chan error, 1)
	go func() { errc <- h.Serve(context.Background(), busy.Addr().String()) }() // never cancelled
	err = waitErr(t, errc, "Serve on a busy port")
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("Serve on busy port: %v", err)
	}
}

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr        string
		allowRemote bool
		wantErr     string // "" means accepted
	}{
		{"127.0.0.1:9469", false, ""},
		{"127.8.9.10:9469", false, ""},
		{"localhost:9469", false, ""},
		{"LocalHost:9469", false, ""},
		{"[::1]:9469", false, ""},
		{"[::ffff:127.0.0.1]:9469", false, ""},
		{"127.0.0.1:0", false, ""},
		{"0.0.0.0:9469", false, "set metrics.allow_remote: true"},
		{":9469", false, "all interfaces"},
		{"[::]:9469", false, "set metrics.allow_remote: true"},
		{"192.0.2.10:9469", false, "set metrics.allow_remote: true"},
		{"metrics.example.com:9469", false, "set metrics.allow_remote: true"},
		{"localhost.example.com:9469", false, "set metrics.allow_remote: true"},
		{"0.0.0.0:9469", true, ""},
		{":9469", true, ""},
		{"127.0.0.1", false, "missing port"},
		{"127.0.0.1", true, "missing port"},
	} {
		err := CheckListen(tc.addr, tc.allowRemote)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckListen(%q, %v) = %v, want nil", tc.addr, tc.allowRemote, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckListen(%q, %v) = %v, want error containing %q", tc.addr, tc.allowRemote, err, tc.wantErr)
		}
	}
}
