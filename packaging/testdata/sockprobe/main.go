// sockprobe makes the socket calls rtunnel's tunnel package makes
// (TCP_USER_TIMEOUT, SO_REUSEADDR, TCP_INFO via getsockopt) on a loopback
// connection and prints what the kernel answered, one "name value" a line.
// The release test runs it under qemu-user to see whether emulation passes
// them through as a real board's kernel would.
package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const tcpUserTimeout = 0x12 // TCP_USER_TIMEOUT

func main() {
	if err := probe(); err != nil {
		fmt.Fprintln(os.Stderr, "sockprobe:", err)
		os.Exit(1)
	}
}

func probe() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	peer, ok := <-accepted
	if !ok {
		return fmt.Errorf("accept failed")
	}
	defer peer.Close()
	// Traffic both ways, so last_ack_recv has something to report.
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := peer.Read(buf); err != nil {
		return err
	}
	if _, err := peer.Write(buf); err != nil {
		return err
	}
	if _, err := c.Read(buf); err != nil {
		return err
	}
	// Then silence: last_data_recv must count it.
	time.Sleep(300 * time.Millisecond)

	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	return raw.Control(func(fd uintptr) {
		s := int(fd)
		fmt.Println("user_timeout_set", errText(syscall.SetsockoptInt(s, syscall.IPPROTO_TCP, tcpUserTimeout, 7000)))
		v, err := syscall.GetsockoptInt(s, syscall.IPPROTO_TCP, tcpUserTimeout)
		fmt.Println("user_timeout_ms", v, errText(err))
		fmt.Println("reuseaddr_set", errText(syscall.SetsockoptInt(s, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)))
		v, err = syscall.GetsockoptInt(s, syscall.SOL_SOCKET, syscall.SO_REUSEADDR)
		fmt.Println("reuseaddr", v, errText(err))
		// How many bytes of struct tcp_info the kernel (or emulator) fills.
		var info [232]byte
		n := uint32(len(info))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
		fmt.Println("tcp_info_len", n, errText(errnoErr(e)))
		// What the tunnel package reads (tunnel/sockopt_linux.go).
		ti, err := unix.GetsockoptTCPInfo(s, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			fmt.Println("tcp_info_last_data_recv_ms", errText(err))
			return
		}
		fmt.Println("tcp_info_last_data_recv_ms", ti.Last_data_recv)
	})
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func errText(err error) string {
	if err != nil {
		return "err=" + err.Error()
	}
	return "ok"
}
