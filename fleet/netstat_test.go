package fleet

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// kernelCounts is what the hub's kernel did to connections on their way to
// sshd, over one phase (TcpExt of the hub namespace's /proc/net/netstat).
// They say where a connection waited before sshd ever saw it: a SYN dropped
// because sshd's accept queue was full (the client retries on its SYN
// schedule), or a connection taken by SYN cookie.
type kernelCounts struct {
	// ListenOverflows: a connection was ready but the accept queue was full.
	ListenOverflows int64 `json:"listen_overflows"`
	// ListenDrops: SYNs and handshake ACKs dropped at the listener, for any
	// reason (overflows included).
	ListenDrops    int64 `json:"listen_drops"`
	SyncookiesSent int64 `json:"syncookies_sent"`
	SyncookiesRecv int64 `json:"syncookies_recv"`
}

var kernelCountNames = []string{"ListenOverflows", "ListenDrops", "SyncookiesSent", "SyncookiesRecv"}

// readKernelCounts reads the TcpExt counters of the network namespace pid
// lives in.
func readKernelCounts(pid int) (kernelCounts, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/netstat", pid))
	if err != nil {
		return kernelCounts{}, err
	}
	defer f.Close()
	vals, err := parseTcpExt(bufio.NewScanner(f))
	if err != nil {
		return kernelCounts{}, fmt.Errorf("/proc/%d/net/netstat: %w", pid, err)
	}
	return kernelCounts{
		ListenOverflows: vals["ListenOverflows"],
		ListenDrops:     vals["ListenDrops"],
		SyncookiesSent:  vals["SyncookiesSent"],
		SyncookiesRecv:  vals["SyncookiesRecv"],
	}, nil
}

// parseTcpExt reads the TcpExt header line and the value line after it.
func parseTcpExt(sc *bufio.Scanner) (map[string]int64, error) {
	var names []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "TcpExt:" {
			continue
		}
		if names == nil {
			names = fields[1:]
			continue
		}
		if len(fields)-1 != len(names) {
			return nil, fmt.Errorf("TcpExt: %d names, %d values", len(names), len(fields)-1)
		}
		vals := map[string]int64{}
		for i, n := range names {
			v, err := strconv.ParseInt(fields[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("TcpExt %s: %w", n, err)
			}
			vals[n] = v
		}
		for _, n := range kernelCountNames {
			if _, ok := vals[n]; !ok {
				return nil, fmt.Errorf("TcpExt has no %s", n)
			}
		}
		return vals, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no TcpExt lines")
}

func (k kernelCounts) minus(before kernelCounts) kernelCounts {
	return kernelCounts{
		ListenOverflows: k.ListenOverflows - before.ListenOverflows,
		ListenDrops:     k.ListenDrops - before.ListenDrops,
		SyncookiesSent:  k.SyncookiesSent - before.SyncookiesSent,
		SyncookiesRecv:  k.SyncookiesRecv - before.SyncookiesRecv,
	}
}

func TestParseTcpExt(t *testing.T) {
	in := "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows ListenDrops\n" +
		"TcpExt: 7 5 1 12 13\n" +
		"IpExt: InNoRoutes\nIpExt: 0\n"
	vals, err := parseTcpExt(bufio.NewScanner(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if vals["SyncookiesSent"] != 7 || vals["SyncookiesRecv"] != 5 || vals["ListenOverflows"] != 12 || vals["ListenDrops"] != 13 {
		t.Errorf("parsed %v", vals)
	}
	if _, err := parseTcpExt(bufio.NewScanner(strings.NewReader("TcpExt: ListenOverflows\nTcpExt: 1\n"))); err == nil {
		t.Error("a TcpExt without SyncookiesSent parsed without an error")
	}
	// The namespace of this test process has the counters too.
	if _, err := readKernelCounts(os.Getpid()); err != nil {
		t.Error(err)
	}
}
