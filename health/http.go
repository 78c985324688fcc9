package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// shutdownTimeout bounds how long a server waits for in-flight requests on exit.
const shutdownTimeout = 2 * time.Second

// Handler serves the public endpoints /metrics, /healthz, /readyz and
// /status for a listener bound to addr. Any local user can reach a loopback
// port, so they show what `ps` and the metrics already show (tunnel and
// forward names, states, counts) and never an error text: those carry
// paths, fingerprints and peer addresses and are served on the control
// socket only. Requests whose Host header does not name addr are refused
// (see hostGuard).
func (h *Health) Handler(addr net.Addr) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h.reg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ok, notReady := h.Ready()
		if ok {
			_, _ = w.Write([]byte("ready\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(strings.Join(notReady, "\n") + "\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, h.PublicReport())
	})
	return hostGuard(addr, mux)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ServeListener serves Handler on ln until ctx is done, e.g. on
// "127.0.0.1:0" to learn the port, or on a port bound before READY=1. On
// cancel it shuts the server down (waiting at most 2 s for in-flight
// requests) and returns nil once its serving goroutine has ended. It
// closes ln.
func (h *Health) ServeListener(ctx context.Context, ln net.Listener) error {
	if err := serve(ctx, ln, h.Handler(ln.Addr())); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// serve runs an HTTP server with bounded timeouts on ln until ctx is done
// or serving fails, and returns after its goroutine has ended.
func serve(ctx context.Context, ln net.Listener, handler http.Handler) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	select {
	case err := <-done: // Serve failed on its own (e.g. accept error)
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // a request outlived the grace period: cut it
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	}
	return nil
}
