package tunnel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/rtunnel/rtunnel/internal/tcptest"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// This file holds an in-process SSH server (x/crypto) that behaves as
// rtunnel's hub would, plus whatever a hostile or broken one might do, and
// the tests that drive a real Session against it. errors_test.go and
// dial_test.go use the same server.

// testServer is an SSH server on 127.0.0.1. It grants tcpip-forward unless
// told otherwise and hands each authenticated connection to the test.
type testServer struct {
	t       *testing.T
	host    string
	ln      net.Listener
	port    int
	hostKey ssh.Signer
	cfg     *ssh.ServerConfig

	refuseForward atomic.Bool
	refuseAuth    atomic.Bool
	silent        atomic.Bool // accept TCP and never speak
	closeAtOnce   atomic.Bool // accept TCP and close it
	holdForward   atomic.Bool // never answer tcpip-forward, as a hub too slow to reply
	// allocate, when set, answers a port-0 tcpip-forward with this port,
	// after opening a forwarded-tcpip channel for it (see portzero_test.go).
	allocate   atomic.Uint32
	earlyChans chan ssh.Channel
	accepted   atomic.Int32

	forwardAsked chan struct{} // one value per tcpip-forward received
	// onChannel, when set, is offered each channel the client opens
	// before the default refusal; it returns whether it took it.
	onChannel func(nc ssh.NewChannel) bool

	conns chan *hubConn
	wg    sync.WaitGroup
	mu    sync.Mutex
	raw   []net.Conn
}

// hubConn is one authenticated connection as the server sees it.
type hubConn struct {
	*ssh.ServerConn
	raw      *gatedConn
	forwards chan forwardPayload // granted tcpip-forward requests
	chanType chan string         // channel types the client tried to open
}

// gatedConn can stop reading, as a server that hangs or a dead link does.
type gatedConn struct {
	net.Conn
	mu   sync.Mutex
	gate chan struct{} // closed while reading is allowed
}

func newGatedConn(c net.Conn) *gatedConn {
	g := &gatedConn{Conn: c, gate: make(chan struct{})}
	close(g.gate)
	return g
}

func (g *gatedConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	<-gate
	return g.Conn.Read(p)
}

// Pause stops the server reading (and so answering) until Close.
func (g *gatedConn) Pause() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedConn) Close() error {
	g.mu.Lock()
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
	g.mu.Unlock()
	return g.Conn.Close()
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServerOn(t, "127.0.0.1")
}

// newTestServerOn listens on host (a loopback address) and a free port.
func newTestServerOn(t *testing.T, host string) *testServer {
	t.Helper()
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, host: host, ln: ln, port: ln.Addr().(*net.TCPAddr).Port, hostKey: hostKey, conns: make(chan *hubConn, 64), forwardAsked: make(chan struct{}, 64)}
	s.cfg = &ssh.ServerConfig{}
	// Any key logs in unless refuseAuth is set.
	s.cfg.PublicKeyCallback = func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		if s.refuseAuth.Load() {
			return nil, errors.New("key not in authorized_keys")
		}
		return nil, nil
	}
	s.cfg.AddHostKey(hostKey)
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// acceptedFrom counts the TCP connections the server accepted from the
// address from.
func (s *testServer) acceptedFrom(from *net.TCPAddr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.raw {
		if c.RemoteAddr().String() == from.String() {
			n++
		}
	}
	return n
}

func (s *testServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		g := newGatedConn(c)
		s.mu.Lock()
		s.raw = append(s.raw, g)
		s.mu.Unlock()
		switch {
		case s.closeAtOnce.Load():
			c.Close()
			continue
		case s.silent.Load():
			continue // held open, never a byte; closed by close()
		}
		s.wg.Add(1)
		go s.handle(g)
	}
}

func (s *testServer) handle(g *gatedConn) {
	defer s.wg.Done()
	conn, chans, reqs, err := ssh.NewServerConn(g, s.cfg)
	if err != nil {
		g.Close()
		return
	}
	sc := &hubConn{ServerConn: conn, raw: g, forwards: make(chan forwardPayload, 64), chanType: make(chan string, 64)}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for r := range reqs {
			switch r.Type {
			case "tcpip-forward":
				select {
				case s.forwardAsked <- struct{}{}:
				default:
				}
				if s.holdForward.Load() {
					continue
				}
				var p forwardPayload
				ok := ssh.Unmarshal(r.Payload, &p) == nil && !s.refuseForward.Load()
				if port := s.allocate.Load(); ok && p.Port == 0 && port != 0 {
					s.replyAfterChannel(sc, r, p.Addr, port)
					continue
				}
				r.Reply(ok, nil)
				if ok {
					select {
					case sc.forwards <- p:
					default:
					}
				}
			case "cancel-tcpip-forward":
				r.Reply(true, nil)
			default:
				r.Reply(false, nil)
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		for nc := range chans {
			select {
			case sc.chanType <- nc.ChannelType():
			default:
			}
			if s.onChannel != nil && s.onChannel(nc) {
				continue
			}
			nc.Reject(ssh.Prohibited, "no")
		}
	}()
	select {
	case s.conns <- sc:
	default:
	}
	conn.Wait()
}

func (s *testServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.raw {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// next waits for the next authenticated connection.
func (s *testServer) next(t *testing.T) *hubConn {
	t.Helper()
	select {
	case sc := <-s.conns:
		return sc
	case <-time.After(10 * time.Second):
		t.Fatal("no SSH connection reached the test server")
		return nil
	}
}

// openForwarded opens a forwarded-tcpip channel as sshd does for a
// connection to addr:port.
func (sc *hubConn) openForwarded(addr string, port uint32) (ssh.Channel, error) {
	ch, reqs, err := sc.OpenChannel("forwarded-tcpip", ssh.Marshal(&forwardedPayload{Addr: addr, Port: port, OriginAddr: "127.0.0.1", OriginPort: 40000}))
	if err != nil {
		return nil, err
	}
	go ssh.DiscardRequests(reqs)
	return ch, nil
}

// clientFiles writes a client key (mode 0600) and a known_hosts file that
// holds the server's key for [127.0.0.1]:port.
type clientFiles struct {
	dir        string
	identity   string
	knownHosts string
	signer     ssh.Signer
}

func newClientFiles(t *testing.T, s *testServer) clientFiles {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "rtunnel-test")
	if err != nil {
		t.Fatal(err)
	}
	f := clientFiles{dir: dir, identity: filepath.Join(dir, "id_ed25519"), knownHosts: filepath.Join(dir, "known_hosts")}
	if err := os.WriteFile(f.identity, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if f.signer, err = ssh.NewSignerFromKey(priv); err != nil {
		t.Fatal(err)
	}
	if s != nil {
		line := knownhosts.Line([]string{knownhosts.Normalize(s.addr())}, s.hostKey.PublicKey())
		if err := os.WriteFile(f.knownHosts, []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// record is one log record with its attributes as text.
type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// logs collects a Session's log records.
type logs struct {
	mu   sync.Mutex
	recs []record
}

type logHandler struct {
	l     *logs
	attrs []slog.Attr
}

func (h logHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{l: h.l, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h logHandler) WithGroup(string) slog.Handler { return h }
func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.l.mu.Lock()
	h.l.recs = append(h.l.recs, rec)
	h.l.mu.Unlock()
	return nil
}

func (l *logs) logger() *slog.Logger { return slog.New(logHandler{l: l}) }

// count is how many records have msg.
func (l *logs) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.msg == msg {
			n++
		}
	}
	return n
}

// wait polls (bounded) until a record with msg exists and returns it.
func (l *logs) wait(t *testing.T, msg string, timeout time.Duration) record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l.mu.Lock()
		for _, r := range l.recs {
			if r.msg == msg {
				l.mu.Unlock()
				return r
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no log %q within %v; have:\n%s", msg, timeout, l.dump())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *logs) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.recs {
		fmt.Fprintf(&b, "%s %q %v\n", r.level, r.msg, r.attrs)
	}
	return b.String()
}

// baseConfig is a tunnel to s with one forward localhost:2220 -> local.
func baseConfig(s *testServer, f clientFiles, l *logs, local string) Config {
	port := 0
	if s != nil {
		port = s.port
	}
	return Config{
		Name:              "t",
		Server:            Endpoint{User: "rt", Host: "127.0.0.1", Port: port, Identities: []string{f.identity}, KnownHosts: f.knownHosts, ConnectTimeout: 5 * time.Second},
		Forwards:          []Forward{{RemoteHost: "localhost", RemotePort: 2220, Local: local}},
		KeepaliveInterval: 200 * time.Millisecond,
		KeepaliveCountMax: 3,
		ShutdownGrace:     time.Second,
		Log:               l.logger(),
	}
}

// running is a Session in its own goroutine.
type running struct {
	cancel context.CancelFunc
	up     chan struct{}
	done   chan struct{}
	err    error
}

func startSession(t *testing.T, cfg Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, up: make(chan struct{}), done: make(chan struct{})}
	tn := New(cfg)
	go func() {
		defer close(r.done)
		r.err = tn.Session(ctx, func() { close(r.up) })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("Session did not return 10s after its context ended")
		}
	})
	return r
}

func (r *running) waitUp(t *testing.T) {
	t.Helper()
	select {
	case <-r.up:
	case <-r.done:
		t.Fatalf("session ended before it was up: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("session not up within 10s")
	}
}

// alive fails the test if the session has ended.
func (r *running) alive(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
		t.Fatalf("session ended: %v", r.err)
	default:
	}
}

// wait waits (bounded) for the session to end and returns its error.
func (r *running) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		t.Fatalf("session still running after %v", timeout)
		return nil
	}
}

// newTarget is a local target on 127.0.0.1 running handle per connection.
func newTarget(t *testing.T, handle func(i int, c net.Conn)) *tcptest.Server {
	t.Helper()
	return tcptest.Listen(t, "", handle)
}

// echo writes back what it reads.
var echo = tcptest.Echo

// roundTrip writes msg on ch, half-closes and reads the echo.
func roundTrip(t *testing.T, ch ssh.Channel, msg []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := ch.Write(msg)
		if err == nil {
			err = ch.CloseWrite()
		}
		errc <- err
	}()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(ch)
		got <- b
	}()
	select {
	case b := <-got:
		if !bytes.Equal(b, msg) {
			t.Fatalf("echo through the tunnel: got %d bytes, want %d", len(b), len(msg))
		}
	case <-time.After(10 * time.Second):
		ch.Close()
		t.Fatal("echo through the tunnel did not finish within 10s")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	ch.Close()
}

// upWithEcho starts a session to a fresh server, forwarding to an echo
// target, and returns it once the forward is granted.
func upWithEcho(t *testing.T, mod func(*Config)) (*testServer, *hubConn, *running, *logs) {
	t.Helper()
	s := newTestServer(t)
	f := newClientFiles(t, s)
	l := &logs{}
	tg := newTarget(t, echo)
	cfg := baseConfig(s, f, l, tg.Addr())
	if mod != nil {
		mod(&cfg)
	}
	r := startSession(t, cfg)
	r.waitUp(t)
	sc := s.next(t)
	return s, sc, r, l
}

func TestHostileServerOpensUnwantedChannels(t *testing.T) {
	_, sc, r, l := upWithEcho(t, nil)
	for _, typ := range []string{"session", "direct-tcpip", "x11", "auth-agent@openssh.com", "evil@example.com"} {
		_, _, err := sc.OpenChannel(typ, []byte("whatever"))
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) {
			t.Fatalf("server opened a %s channel: err %v, want a refusal", typ, err)
		}
		want := ssh.Prohibited
		if typ == "evil@example.com" {
			want = ssh.UnknownChannelType // x/crypto refuses types nobody registered
		}
		if oce.Reason != want {
			t.Errorf("%s refused with %v, want %v", typ, oce.Reason, want)
		}
	}
	// A forwarded-tcpip channel for a port rtunnel never asked for, and one
	// whose payload does not parse.
	if _, err := sc.openForwarded("localhost", 2221); err == nil || !strings.Contains(err.Error(), "no such forward") {
		t.Errorf("forwarded-tcpip for an unasked port: %v, want refused (no such forward)", err)
	}
	if _, _, err := sc.OpenChannel("forwarded-tcpip", []byte{0, 0, 0, 200, 1}); err == nil {
		t.Error("malformed forwarded-tcpip accepted")
	}
	// The same for forwarded-streamlocal: no socket forward was asked for.
	_, _, err := sc.OpenChannel("forwarded-streamlocal@openssh.com", ssh.Marshal(&forwardedStreamLocalPayload{Path: "/run/hub/other.sock"}))
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited || oce.Message != "no such forward" {
		t.Errorf("forwarded-streamlocal for an unasked path: %v, want refused (no such forward)", err)
	}
	if _, _, err := sc.OpenChannel("forwarded-streamlocal@openssh.com", []byte("whatever")); err == nil {
		t.Error("malformed forwarded-streamlocal accepted")
	}
	rec := l.wait(t, "refused a channel the server opened: rtunnel only accepts forwarded-tcpip and forwarded-streamlocal for its own forwards", 5*time.Second)
	if rec.level != slog.LevelWarn || rec.attrs["type"] == "" {
		t.Errorf("refusal logged as %v %v", rec.level, rec.attrs)
	}
	l.wait(t, "refused a forwarded connection for a port rtunnel did not ask for", 5*time.Second)
	l.wait(t, "refused a malformed forwarded-tcpip channel from the server", 5*time.Second)
	l.wait(t, "refused a forwarded connection for a socket path rtunnel did not ask for", 5*time.Second)
	l.wait(t, "refused a malformed forwarded-streamlocal channel from the server", 5*time.Second)
	// The tunnel is unaffected: our own forward carries data.
	ch, err := sc.openForwarded("localhost", 2220)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, []byte("still working"))
	r.alive(t)
}

func TestHostileServerSendsOddGlobalRequests(t *testing.T) {
	_, sc, r, l := upWithEcho(t, nil)
	big := make([]byte, 200<<10) // well inside x/crypto's 256 KiB packet limit
	reqs := []struct {
		name    string
		payload []byte
	}{
		{"", nil},
		{strings.Repeat("x", 10<<10), nil},
		{"\x00\xff\xfe binary", []byte{1, 2, 3}},
		{"tcpip-forward", ssh.Marshal(&forwardPayload{Addr: "0.0.0.0", Port: 22})},
		{"no-such-request@example.com", big},
		{"keepalive@openssh.com", nil}, // sshd's ClientAlive: answered, not logged
	}
	for _, q := range reqs {
		ok, _, err := sc.SendRequest(q.name, true, q.payload)
		if err != nil {
			t.Fatalf("global request %.20q: %v", q.name, err)
		}
		if ok {
			t.Errorf("global request %.20q was granted", q.name)
		}
	}
	// Many more, without replies: still one warning a minute.
	for i := 0; i < 500; i++ {
		if _, _, err := sc.SendRequest(fmt.Sprintf("flood-%d", i), false, big[:1024]); err != nil {
			t.Fatal(err)
		}
	}
	rec := l.wait(t, "refused a global request from the server: rtunnel serves none", 5*time.Second)
	if len(rec.attrs["type"]) > 70 {
		t.Errorf("logged type is %d bytes: the server's text must be truncated", len(rec.attrs["type"]))
	}
	ch, err := sc.openForwarded("localhost", 2220)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, []byte("after the odd requests"))
	if n := l.count("refused a global request from the server: rtunnel serves none"); n != 1 {
		t.Errorf("%d warnings for 505 odd requests, want 1 (rate-limited)", n)
	}
	r.alive(t)
}

func TestHostileServerFloodsUnknownForwards(t *testing.T) {
	_, sc, r, l := upWithEcho(t, nil)
	var wg sync.WaitGroup
	var refused atomic.Int32
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				if _, err := sc.openForwarded("localhost", uint32(3000+i)); err != nil {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if refused.Load() != 2000 {
		t.Errorf("%d of 2000 channels for unknown ports refused", refused.Load())
	}
	if n := l.count("refused a forwarded connection for a port rtunnel did not ask for"); n != 1 {
		t.Errorf("%d warnings for 2000 unknown forwards, want 1 (rate-limited)", n)
	}
	ch, err := sc.openForwarded("localhost", 2220)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, []byte("after the flood"))
	r.alive(t)
}

// max_connections: connections over the limit are refused at once with a
// rate-limited warning, not queued; below it they are served again.
func TestMaxConnectionsRefusesOverflowAtOnce(t *testing.T) {
	release := make(chan struct{})
	s := newTestServer(t)
	f := newClientFiles(t, s)
	l := &logs{}
	tg := newTarget(t, func(_ int, c net.Conn) {
		// Held open until the other side closes (or the test ends).
		go func() {
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
			c.Close()
		}()
		io.Copy(io.Discard, c)
	})
	defer close(release)
	cfg := baseConfig(s, f, l, tg.Addr())
	cfg.MaxConnections = 8
	r := startSession(t, cfg)
	r.waitUp(t)
	sc := s.next(t)
	var held []ssh.Channel
	for i := 0; i < 8; i++ {
		ch, err := sc.openForwarded("localhost", 2220)
		if err != nil {
			t.Fatalf("connection %d of 8 refused: %v", i+1, err)
		}
		held = append(held, ch)
	}
	start := time.Now()
	for i := 0; i < 50; i++ {
		_, err := sc.openForwarded("localhost", 2220)
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage {
			t.Fatalf("connection %d over max_connections: %v, want refused (resource shortage)", i+9, err)
		}
	}
	took := time.Since(start)
	t.Logf("50 connections over max_connections refused in %v", took)
	if took > 5*time.Second {
		t.Errorf("refusing 50 connections took %v: they must not queue", took)
	}
	l.wait(t, "refused a forwarded connection: max_connections reached", 5*time.Second)
	if n := l.count("refused a forwarded connection: max_connections reached"); n != 1 {
		t.Errorf("%d warnings for 50 refusals, want 1 (rate-limited)", n)
	}
	// Free two slots: new connections are served again.
	held[0].Close()
	held[1].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ch, err := sc.openForwarded("localhost", 2220)
		if err == nil {
			ch.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted after two were closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, ch := range held[2:] {
		ch.Close()
	}
	r.alive(t)
}

// stuckListener accepts nothing: its one-slot backlog is filled, so further
// connects hang (the kernel drops their SYNs), as with a wedged service.
func stuckListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break // the backlog is full
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// A local target that hangs (connect never completes) or stops reading
// must not stall the tunnel's other connections.
func TestStuckLocalTargetDoesNotStallOthers(t *testing.T) {
	s := newTestServer(t)
	f := newClientFiles(t, s)
	l := &logs{}
	stopReading := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(stopReading) })
	tg := newTarget(t, func(i int, c net.Conn) {
		if i == 1 { // the first connection never reads
			<-stopReading
			return
		}
		io.Copy(c, c)
	})
	cfg := baseConfig(s, f, l, tg.Addr())
	cfg.Server.ConnectTimeout = 3 * time.Second
	cfg.Forwards = append(cfg.Forwards, Forward{RemoteHost: "localhost", RemotePort: 2221, Local: stuckListener(t)})
	r := startSession(t, cfg)
	r.waitUp(t)
	sc := s.next(t)

	// Ten connections whose local dial hangs, opened without waiting.
	var hung sync.WaitGroup
	for i := 0; i < 10; i++ {
		hung.Add(1)
		go func() {
			defer hung.Done()
			if ch, err := sc.openForwarded("localhost", 2221); err == nil {
				ch.Close()
			}
		}()
	}
	// One connection to a target that never reads, with more data than the
	// channel window.
	stuck, err := sc.openForwarded("localhost", 2220)
	if err != nil {
		t.Fatal(err)
	}
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		stuck.Write(make([]byte, 8<<20)) // blocks once the windows are full
	}()
	defer writer.Wait()
	defer stuck.Close()
	time.Sleep(300 * time.Millisecond)

	start := time.Now()
	for i := 0; i < 5; i++ {
		ch, err := sc.openForwarded("localhost", 2220)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, ch, bytes.Repeat([]byte{byte(i)}, 256<<10))
	}
	took := time.Since(start)
	t.Logf("5 x 256 KiB echoed in %v beside 10 hung dials and a stuck reader", took)
	if took > 3*time.Second {
		t.Errorf("other connections took %v: a stuck target stalls the tunnel", took)
	}
	r.alive(t)
	// The hung dials end at connect_timeout, refused cleanly.
	waited := make(chan struct{})
	go func() { hung.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("channels to a hanging local target still open after connect_timeout + 7s")
	}
	l.wait(t, "local target refused a forwarded connection; the tunnel stays up", time.Second)
	once.Do(func() { close(stopReading) })
	stuck.Close()
	r.alive(t)
}

// Stopping while connections stream both ways returns within the grace
// plus a second, and leaves no goroutine (TestMain's goleak) and no socket.
func TestStopDuringHeavyTraffic(t *testing.T) {
	fdsBefore := openFDs(t)
	// A subtest, so that its cleanups (server, target) have run when the
	// fds are counted.
	t.Run("stop", func(t *testing.T) {
		s := newTestServer(t)
		f := newClientFiles(t, s)
		l := &logs{}
		tg := newTarget(t, echo)
		cfg := baseConfig(s, f, l, tg.Addr())
		cfg.ShutdownGrace = time.Second
		r := startSession(t, cfg)
		r.waitUp(t)
		sc := s.next(t)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for i := 0; i < 4; i++ {
			ch, err := sc.openForwarded("localhost", 2220)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := ch.Write(buf); err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, ch)
			}()
		}
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		r.cancel()
		err := r.wait(t, cfg.ShutdownGrace+3*time.Second)
		took := time.Since(start)
		t.Logf("Session returned %v after cancel, with 4 streams running (grace %v)", took, cfg.ShutdownGrace)
		if err != nil {
			t.Errorf("Session = %v after cancel, want nil", err)
		}
		if took > cfg.ShutdownGrace+time.Second {
			t.Errorf("stop took %v, want <= grace + 1s", took)
		}
		close(stop)
		s.close()
		wg.Wait()
	})
	// The server, the target and the session are all closed by now.
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > fdsBefore && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := openFDs(t); n > fdsBefore {
		t.Errorf("%d open sockets after the stop, %d before:\n%s", n, fdsBefore, listFDs())
	}
}

// openFDs counts this process's open sockets. (Pipes come and go with the
// runtime's splice pipe pool, which io.Copy between sockets uses.)
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	n := 0
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

func listFDs() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "%s -> %s\n", e.Name(), l)
	}
	data, _ := os.ReadFile("/proc/self/net/tcp")
	b.Write(data)
	return b.String()
}
