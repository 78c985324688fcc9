package tunnel

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"
)

// After a silent death the next connect pokes the server that held the
// dead connection: the remote address recorded when it connected, not
// what the configured name points to now (DNS may have moved it; a fresh
// answer would poke a server that holds nothing). Two loopback addresses
// stand for the old and the new answer. DisableStalePoke sends none.
func TestPokeGoesToTheDeadConnectionsAddress(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		t.Run("DisableStalePoke="+strconv.FormatBool(disabled), func(t *testing.T) {
			old := newTestServerOn(t, "127.0.0.2")
			moved := newTestServerOn(t, "127.0.0.3")
			f := newClientFiles(t, old)
			line := knownhosts.Line([]string{knownhosts.Normalize(moved.addr())}, moved.hostKey.PublicKey())
			appendFile(t, f.knownHosts, line+"\n")
			cfg := baseConfig(old, f, &logs{}, "127.0.0.1:22")
			cfg.Server.Host = old.host
			cfg.DisableStalePoke = disabled
			tn := New(cfg)

			// The link to the old address dies silently.
			first := runSession(t, tn)
			first.waitUp(t)
			old.next(t).raw.Pause()
			var dead *LinkDeadError
			if err := first.wait(t, 5*time.Second); !errors.As(err, &dead) {
				t.Fatalf("first session ended with %v, want a dead link", err)
			}
			st := tn.staleConn()
			if st == nil {
				t.Fatal("no stale connection recorded after a dead link")
			}
			if st.remote.String() != old.addr() {
				t.Fatalf("recorded the dead connection's server as %v, want %v", st.remote, old.addr())
			}

			// The name now points elsewhere.
			tn.cfg.Server.Host, tn.cfg.Server.Port = moved.host, moved.port
			second := runSession(t, tn)
			second.waitUp(t)
			moved.next(t)
			second.cancel()
			second.wait(t, 5*time.Second)

			// The dead session itself came from st.local; a poke is a second.
			pokes := old.acceptedFrom(st.local) - 1
			if want := map[bool]int{false: 1, true: 0}[disabled]; pokes != want {
				t.Errorf("the dead connection's address got %d pokes from %v, want %d", pokes, st.local, want)
			}
			if n := moved.acceptedFrom(st.local); n != 0 {
				t.Errorf("the name's new address got %d pokes from %v, want none", n, st.local)
			}
		})
	}
}

// runSession runs a Session of tn in its own goroutine.
func runSession(t *testing.T, tn *Tunnel) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, up: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = tn.Session(ctx, func() { close(r.up) })
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(data); err != nil {
		t.Fatal(err)
	}
}
