package tunnel

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// proxyDirect makes s a jump host: it accepts direct-tcpip channels,
// connects to the target they name and pipes. On each channel it first
// sends a request of its own, whose reply (or error) goes to replies.
func proxyDirect(s *testServer, replies chan<- error) {
	s.onChannel = func(nc ssh.NewChannel) bool {
		if nc.ChannelType() != "direct-tcpip" {
			return false
		}
		var p directTCPIPPayload
		if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
			nc.Reject(ssh.ConnectionFailed, "bad payload")
			return true
		}
		target, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
		if err != nil {
			nc.Reject(ssh.ConnectionFailed, err.Error())
			return true
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			target.Close()
			return true
		}
		s.wg.Add(4)
		go func() {
			defer s.wg.Done()
			ssh.DiscardRequests(reqs)
		}()
		go func() {
			defer s.wg.Done()
			ok, err := ch.SendRequest("evil@example.com", true, nil)
			if err == nil && ok {
				err = errors.New("the client granted the request")
			}
			replies <- err
		}()
		pipe := func(dst io.WriteCloser, src io.Reader) {
			defer s.wg.Done()
			_, _ = io.Copy(dst, src)
			ch.Close()
			target.Close()
		}
		go pipe(target, ch)
		go pipe(ch, target)
		return true
	}
}

// A jump host that sends requests on the channel carrying the next hop,
// and opens forwarded-tcpip and session channels of its own: the requests
// get a "no" (from the next hop's serving goroutine: nothing else reads
// them), the channels are refused and logged, and the tunnel through it
// carries data.
func TestHostileJumpHost(t *testing.T) {
	final := newTestServer(t)
	jump := newTestServer(t)
	replies := make(chan error, 4)
	proxyDirect(jump, replies)
	f := newClientFiles(t, final)
	kh, err := os.OpenFile(f.knownHosts, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(jump.addr())}, jump.hostKey.PublicKey()) + "\n")
	kh.Close()
	if err != nil {
		t.Fatal(err)
	}
	l := &logs{}
	tg := newTarget(t, echo)
	cfg := baseConfig(final, f, l, tg.Addr())
	cfg.Jump = []Endpoint{{User: "rt", Host: "127.0.0.1", Port: jump.port, Identities: []string{f.identity}, KnownHosts: f.knownHosts, ConnectTimeout: 5 * time.Second}}
	r := startSession(t, cfg)
	r.waitUp(t)
	jc := jump.next(t)
	sc := final.next(t)

	select {
	case err := <-replies:
		if err != nil {
			t.Fatalf("the jump host's request on the carrying channel: %v, want a refusal", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the jump host's request on the carrying channel was never answered")
	}
	for _, typ := range []string{"forwarded-tcpip", "session"} {
		_, _, err := jc.OpenChannel(typ, ssh.Marshal(&forwardedPayload{Addr: "localhost", Port: 2220, OriginAddr: "127.0.0.1", OriginPort: 40000}))
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
			t.Errorf("the jump host opened a %s channel: %v, want refused as prohibited", typ, err)
		}
	}
	rec := l.wait(t, "refused a channel the server opened: rtunnel only accepts forwarded-tcpip and forwarded-streamlocal for its own forwards", 5*time.Second)
	if !strings.Contains(rec.attrs["hop"], ":"+strconv.Itoa(jump.port)) {
		t.Errorf("refusal logged with hop %q, want the jump host", rec.attrs["hop"])
	}

	ch, err := sc.openForwarded("localhost", 2220)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ch, []byte("through the jump host"))
	r.alive(t)
}
