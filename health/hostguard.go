package health

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// hostGuard refuses, with 421 Misdirected Request, every request whose Host
// header does not name the loopback listener addr: "localhost" or addr's IP,
// with or without addr's port. A web page in a local browser can point a
// name it controls at 127.0.0.1 (DNS rebinding) and then read the
// endpoints as same-origin; its requests carry that name in Host, so they
// are refused here.
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
	ip, _ := netip.AddrFromSlice(tcp.IP)
	port := strconv.Itoa(tcp.Port)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !namesListener(r.Host, ip.Unmap(), port) {
			http.Error(w, "misdirected request: the Host header must name this listener (localhost or "+
				ip.Unmap().String()+", optionally with :"+port+")", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// namesListener reports whether the Host header value host names ip:port.
func namesListener(host string, ip netip.Addr, port string) bool {
	name, p, err := net.SplitHostPort(host)
	if err != nil { // no port: "localhost", "127.0.0.1" or "[::1]"
		name = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	} else if p != port {
		return false
	}
	if strings.EqualFold(name, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Zone() == "" && a.Unmap() == ip
}
