package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testPub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO62jBy8a6rgr+Q66CPYa9TXzrrZhqBz/QHd+6OhBWkk remote@host"

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// A socket forward's line comes with what governs sockets instead of
// permitlisten.
func TestAuthorizedKeySocketAdvice(t *testing.T) {
	pubFile := filepath.Join(t.TempDir(), "id.pub")
	if err := os.WriteFile(pubFile, []byte(testPub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "authorized-key", "--role", "direct-remote", "--port", "2220", "--socket", "/run/hub/remote-7.sock", "--pubkey", pubFile)
	for _, want := range []string{"permitlisten does not govern Unix socket forwards (/run/hub/remote-7.sock)", "AllowStreamLocalForwarding", "StreamLocalBindUnlink yes"} {
		if code != 0 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, stderr %q: want %q", code, errOut, want)
		}
	}
}

func TestAuthorizedKey(t *testing.T) {
	pubFile := filepath.Join(t.TempDir(), "id.pub")
	if err := os.WriteFile(pubFile, []byte(testPub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--role", "direct-remote", "--port", "2220"},
			`restrict,port-forwarding,permitlisten="localhost:2220",permitopen="255.255.255.255:9",command="/bin/false" ` + testPub},
		{[]string{"--role", "a-remote-vpn", "--port", "2210"},
			`restrict,port-forwarding,permitopen="localhost:2210",permitlisten="255.255.255.255:9",command="/bin/false" ` + testPub},
		{[]string{"--role", "b-master", "--ports", "2220,2221,2222"},
			`restrict,port-forwarding,permitopen="localhost:2220",permitopen="localhost:2221",permitopen="localhost:2222",permitlisten="255.255.255.255:9",command="/bin/false" ` + testPub},
		{[]string{"--role", "b-remote", "--port", "2221", "--metrics-port", "9221"},
			`restrict,port-forwarding,permitlisten="localhost:2221",permitlisten="localhost:9221",permitopen="255.255.255.255:9",command="/bin/false" ` + testPub},
		{[]string{"--role", "b-master", "--port", "2220", "--ports", "2221", "--from", "10.0.0.0/8"},
			`restrict,port-forwarding,permitopen="localhost:2220",permitopen="localhost:2221",permitlisten="255.255.255.255:9",command="/bin/false",from="10.0.0.0/8" ` + testPub},
		// remote: localhost:0 needs "*": sshd matches port 0 only against it.
		{[]string{"--role", "direct-remote", "--any-port"},
			`restrict,port-forwarding,permitlisten="localhost:*",permitopen="255.255.255.255:9",command="/bin/false" ` + testPub},
		// local_forwards: the targets replace the blocking permitopen.
		{[]string{"--role", "direct-remote", "--port", "2220", "--permitopen", "db.internal:5432", "--permitopen", "[::1]:5432"},
			`restrict,port-forwarding,permitlisten="localhost:2220",permitopen="db.internal:5432",permitopen="[::1]:5432",command="/bin/false" ` + testPub},
		{[]string{"--role", "b-master", "--port", "2220", "--permitopen", "db.internal:5432"},
			`restrict,port-forwarding,permitopen="localhost:2220",permitopen="db.internal:5432",permitlisten="255.255.255.255:9",command="/bin/false" ` + testPub},
		// Sockets only: no TCP port may be bound at all.
		{[]string{"--role", "direct-remote", "--socket", "/run/hub/remote-7.sock"},
			`restrict,port-forwarding,permitlisten="255.255.255.255:9",permitopen="255.255.255.255:9",command="/bin/false" ` + testPub},
		// The cert-authority form (the tunnel package logs in with it against a real sshd).
		{[]string{"--role", "direct-remote", "--port", "2220", "--ca", pubFile},
			`cert-authority,restrict,port-forwarding,permitlisten="localhost:2220",permitopen="255.255.255.255:9",command="/bin/false" ` + testPub},
		{[]string{"--role", "direct-remote", "--port", "2220", "--ca", pubFile, "--principals", "remote-7,fleet"},
			`cert-authority,restrict,port-forwarding,permitlisten="localhost:2220",permitopen="255.255.255.255:9",command="/bin/false",principals="remote-7,fleet" ` + testPub},
	}
	for _, c := range cases {
		args := append([]string{"authorized-key"}, c.args...)
		if !strings.Contains(strings.Join(c.args, " "), "--ca") {
			args = append(args, "--pubkey", pubFile)
		}
		code, out, errOut := runCmd(t, args...)
		if code != 0 || out != c.want+"\n" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q\nwant %q", c.args, code, out, errOut, c.want)
		}
	}

	refused := []struct {
		args []string
		want string
	}{
		{[]string{"--role", "b-remote", "--port", "none"}, `permitlisten="none"`},
		{[]string{"--role", "b-remote", "--port", ""}, `permitlisten=""`},
		{[]string{"--role", "b-remote", "--port", "0"}, `permitlisten="localhost:0"`},
		{[]string{"--role", "b-remote", "--port", "0"}, `use --any-port`},
		{[]string{"--role", "a-remote-vpn", "--any-port"}, "--any-port is for a key that listens"},
		{[]string{"--role", "direct-remote", "--port", "2220", "--permitopen", "db.internal:0"}, `permitopen="db.internal:0": port must be 1-65535`},
		{[]string{"--role", "direct-remote", "--socket", "run/x.sock"}, "absolute socket path"},
		{[]string{"--role", "direct-remote", "--port", "2220", "--permitopen", "/run/hub/db.sock"}, "permitopen cannot name a socket path"},
		{[]string{"--role", "b-master", "--ports", "2220,0"}, `permitlisten="localhost:0"`},
		{[]string{"--role", "b-remote"}, "no port"},
		{[]string{"--role", "b-remote", "--port", "2221", "--metrics-port", "2221"}, "given twice"},
		{[]string{"--role", "b-remote", "--port", "2221", "--metrics-port", "0"}, "--metrics-port: port 0"},
		{[]string{"--role", "b-master", "--port", "2221", "--metrics-port", "9221"}, "forwards none"},
		{[]string{"--role", "vpn", "--port", "2220"}, "unknown role"},
		{[]string{"--role", "b-remote", "--port", "2221", "--pubkey", filepath.Join(t.TempDir(), "missing.pub")}, "no such file"},
		{[]string{"--role", "b-remote", "--port", "2221", "--pubkey", pubFile, "--ca", pubFile}, "--pubkey and --ca exclude each other"},
		{[]string{"--role", "b-remote", "--port", "2221", "--principals", "a"}, "principals= applies to a cert-authority line only"},
		{[]string{"--role", "b-remote", "--port", "2221", "--ca", pubFile, "--principals", "a b"}, "without spaces or quotes"},
	}
	for _, c := range refused {
		args := append([]string{"authorized-key"}, c.args...)
		if given := strings.Join(c.args, " "); !strings.Contains(given, "--pubkey") && !strings.Contains(given, "--ca") {
			args = append(args, "--pubkey", pubFile)
		}
		code, out, errOut := runCmd(t, args...)
		if code != exitConfig || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 78 and %q", c.args, code, out, errOut, c.want)
		}
	}
}
