package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// shutdownTimeout bounds how long Serve waits for in-flight scrapes on exit.
const shutdownTimeout = 2 * time.Second

// Handler serves /metrics, /healthz, /readyz and /status.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{
		Registry:      h.reg, // counts failed scrapes in promhttp_metric_handler_errors_total
		ErrorHandling: promhttp.ContinueOnError,
		// No Timeout: it would gather in a goroutine that outlives Shutdown.
	}))
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
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(h.Snapshot())
	})
	return mux
}

// Serve listens on listen and serves Handler until ctx is done. A listen
// error is returned at once, before anything is served. On cancel it shuts
// the server down (waiting at most 2 s for in-flight requests) and returns
// nil once its serving goroutine has ended.
func (h *Health) Serve(ctx context.Context, listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", listen, err)
	}
	return h.ServeListener(ctx, ln)
}

// ServeListener is Serve on a listener the caller opened, e.g. to learn the
// port of "127.0.0.1:0" or to listen before signalling READY=1. It closes ln.
func (h *Health) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           h.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	select {
	case err := <-done: // Serve failed on its own (e.g. accept error)
		return fmt.Errorf("metrics: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // a scrape outlived the grace period: cut it
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve on %s: %w", ln.Addr(), err)
	}
	return nil
}

// CheckListen refuses a metrics listen address that is not loopback
// ("localhost", 127.0.0.0/8, ::1) unless allowRemote is set: the endpoints
// reveal tunnel names, forwards and error text.
func CheckListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics listen address %q: %w", addr, err)
	}
	if allowRemote || isLoopback(host) {
		return nil
	}
	what := host
	if host == "" {
		what = "all interfaces"
	}
	return fmt.Errorf("metrics listen address %q is not loopback (%s); set metrics.allow_remote: true to expose metrics beyond this host", addr, what)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
