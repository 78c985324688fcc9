package health

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// hostGuard refuses, with 421 Misdirected Request, every request whose Host
// header does not name a loopback address: "localhost" or a loopback IP,
// with any port. A web page in a local browser can point a name it controls
// at 127.0.0.1 (DNS rebinding) and then read the endpoints as same-origin;
// its requests carry that name in Host, so they are refused here. The port
// is not checked: it tells a rebinding page nothing it could not choose,
// and a scrape through a reverse tunnel (the fleet view: the hub's
// Prometheus reaches this listener through a forward) arrives naming the
// hub's loopback port, not ours.
//
// A listener on a non-loopback or wildcard address (metrics.allow_remote)
// is exposed on purpose: every host on the network reaches it directly, a
// Host check would stop nothing and would break scrapes by any DNS name,
// so the guard is off there.
func hostGuard(addr net.Addr, next http.Handler) http.Handler {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !namesLoopback(r.Host) {
			http.Error(w, "misdirected request: the Host header must name this listener (localhost or a loopback IP)",
				http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// namesLoopback reports whether the Host header value host names a
// loopback address: localhost or a loopback IP, with or without a port.
func namesLoopback(host string) bool {
	name, _, err := net.SplitHostPort(host)
	if err != nil { // no port: "localhost", "127.0.0.1" or "[::1]"
		name = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(name, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}
