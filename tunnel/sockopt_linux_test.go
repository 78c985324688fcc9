package tunnel

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// A real established connection's tcp_info is read; one filled only as far
// as qemu-user fills it (the first 4 bytes) is "cannot tell", never "data
// just now".
func TestTCPInfoShortFillIsUnknown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, ok := lastDataAge(c.(*net.TCPConn)); !ok {
		t.Fatal("lastDataAge of an established loopback connection: cannot tell")
	}
	info, ok := tcpInfo(c.(*net.TCPConn))
	if !ok {
		t.Fatal("tcpInfo of an established loopback connection: cannot tell")
	}
	short := unix.TCPInfo{State: info.State, Ca_state: info.Ca_state, Retransmits: info.Retransmits, Probes: info.Probes}
	if tcpInfoFilled(&short) {
		t.Error("a tcp_info filled only in its first 4 bytes counts as filled")
	}
}
