package fleet

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// nsHTTP is an HTTP client whose connections start inside the hub's
// namespace. No connection is kept: nothing outlives a request.
func nsHTTP(ns string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, addr)
		},
	}}
}

// metricValue reads one unlabelled sample (e.g. go_goroutines) from the
// /metrics endpoint on 127.0.0.1:port in ns.
func metricValue(ns string, port int, name string) (float64, error) {
	resp, err := nsHTTP(ns).Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no %s on 127.0.0.1:%d/metrics", name, port)
}
