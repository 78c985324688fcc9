package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAddr(t *testing.T) {
	for _, c := range []struct {
		in        string
		allowZero bool
		want      Addr
		err       string // substring of the error; "" means success
	}{
		{in: "localhost:2220", want: Addr{"localhost", 2220}},
		{in: "127.0.0.1:22", want: Addr{"127.0.0.1", 22}},
		{in: "[::1]:22", want: Addr{"::1", 22}},
		{in: "[2001:db8::1]:65535", want: Addr{"2001:db8::1", 65535}},
		{in: "[::ffff:192.0.2.1]:80", want: Addr{"::ffff:192.0.2.1", 80}},
		{in: "0.0.0.0:1", want: Addr{"0.0.0.0", 1}},
		{in: "host-a.example.org.:8080", want: Addr{"host-a.example.org.", 8080}},
		{in: "under_score:9", want: Addr{"under_score", 9}},
		// Kept literally: sshd's permitlisten compares the text.
		{in: "LocalHost:2220", want: Addr{"LocalHost", 2220}},
		{in: "localhost:0", allowZero: true, want: Addr{"localhost", 0}},

		{in: "", err: `empty address; want host:port`},
		{in: "localhost", err: `"localhost" is not host:port (IPv6 needs brackets: [::1]:22)`},
		{in: "::1:22", err: `"::1:22" is not host:port`},
		{in: "[::1]", err: `is not host:port`},
		{in: "[::1:22", err: `is not host:port`},
		{in: ":2220", err: `":2220" has no host; write localhost:2220`},
		{in: "[]:2220", err: `has no host`},
		{in: "localhost:0", err: `"localhost:0": port 0 is out of range 1-65535`},
		{in: "localhost:65536", err: `port 65536 is out of range 1-65535`},
		{in: "localhost:70000", allowZero: true, err: `port 70000 is out of range`},
		{in: "localhost:-1", err: `port -1 is out of range`},
		{in: "localhost:", err: `port "" is not a number`},
		{in: "localhost:ssh", err: `port "ssh" is not a number`},
		{in: "localhost:022", err: `port "022" is not a number`},
		{in: "localhost:+22", err: `port "+22" is not a number`},
		{in: "localhost: 22", err: `port " 22" is not a number`},
		{in: "local host:22", err: `host "local host" contains ' '`},
		{in: " localhost:22", err: `contains ' '`},
		{in: "*:2220", err: `host "*" contains '*'; use a DNS name or an IP address`},
		{in: "[fe80::1%eth0]:22", err: `host "fe80::1%eth0": IPv6 zones (%eth0) are not supported`},
		{in: "[::g]:22", err: `host "::g" is not a valid IPv6 address`},
		{in: "ho\nst:22", err: `contains '\n'`},
		{in: "hôst:22", err: `contains 'ô'`},
		{in: strings.Repeat("a", 254) + ":22", err: `host name longer than 253 characters`},
	} {
		got, err := ParseAddr(c.in, c.allowZero)
		if c.err == "" {
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("ParseAddr(%q, %v) = %+v, %v; want %+v", c.in, c.allowZero, got, err, c.want)
			}
			if back, err := ParseAddr(got.String(), c.allowZero); err != nil || back != got {
				t.Errorf("ParseAddr(%q).String() = %q does not parse back: %+v, %v", c.in, got.String(), back, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("ParseAddr(%q, %v) = %+v, %v; want error containing %q", c.in, c.allowZero, got, err, c.err)
		}
		if got != (Addr{}) {
			t.Errorf("ParseAddr(%q) returned %+v with its error", c.in, got)
		}
	}
}

func TestAddrString(t *testing.T) {
	for a, want := range map[Addr]string{
		{"localhost", 2220}: "localhost:2220",
		{"::1", 22}:         "[::1]:22",
		{"10.0.0.1", 1}:     "10.0.0.1:1",
	} {
		if got := a.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", a, got, want)
		}
	}
	f := Forward{Remote: Addr{"localhost", 2220}, Local: Addr{"::1", 22}}
	if got, want := f.String(), "localhost:2220->[::1]:22"; got != want {
		t.Errorf("Forward.String() = %q, want %q", got, want)
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Endpoint
		err  string // substring of the error; "" means success
	}{
		{in: "tunnel@master.example.org:3333", want: Endpoint{User: "tunnel", Host: "master.example.org", Port: 3333}},
		{in: "tunnel@master.example.org", want: Endpoint{User: "tunnel", Host: "master.example.org", Port: 22}},
		{in: "u@localhost", want: Endpoint{User: "u", Host: "localhost", Port: 22}},
		{in: "u@10.0.0.1:2222", want: Endpoint{User: "u", Host: "10.0.0.1", Port: 2222}},
		{in: "u@[::1]:2222", want: Endpoint{User: "u", Host: "::1", Port: 2222}},
		{in: "u@[::1]", want: Endpoint{User: "u", Host: "::1", Port: 22}},
		{in: "u@[2001:db8::1]", want: Endpoint{User: "u", Host: "2001:db8::1", Port: 22}},
		// A bare IPv6 address without a port, as ssh accepts it.
		{in: "u@::1", want: Endpoint{User: "u", Host: "::1", Port: 22}},
		{in: "u@2001:db8::1", want: Endpoint{User: "u", Host: "2001:db8::1", Port: 22}},
		{in: "first.last-1_x@h", want: Endpoint{User: "first.last-1_x", Host: "h", Port: 22}},
		{in: "u@h:65535", want: Endpoint{User: "u", Host: "h", Port: 65535}},

		{in: "", err: `"" has no user; write user@host[:port]`},
		{in: "master.example.org:3333", err: `has no user; write user@host[:port]`},
		{in: "@host", err: `"@host" has no user`},
		{in: "u@", err: `"u@" has no host; write user@host[:port]`},
		{in: "u@:22", err: `empty host`},
		{in: "u@[]", err: `empty host`},
		{in: "u@h:0", err: `"u@h:0": port 0 is out of range 1-65535`},
		{in: "u@h:70000", err: `port 70000 is out of range 1-65535`},
		{in: "u@h:", err: `port "" is not a number`},
		{in: "u@h:ssh", err: `port "ssh" is not a number`},
		{in: "u@[::1]:0", err: `port 0 is out of range`},
		{in: "u@2001:db8:0:0:0:0:0:1:3333", err: `is not user@host[:port] (IPv6 with a port needs brackets)`},
		{in: "u@h:22:33", err: `IPv6 with a port needs brackets`},
		{in: "u@[2001:db8::1", err: `is not user@host[:port] (IPv6 goes in brackets: user@[::1]:22)`},
		{in: "u@[h", err: `is not user@host[:port]`},
		{in: "u@[::1]x", err: `is not user@host[:port]`},
		{in: "u@[::1]]", err: `host "::1]" is not a valid IPv6 address`},
		{in: "u@master example.org", err: `host "master example.org" contains ' '`},
		{in: "u@host/x", err: `contains '/'`},
		{in: "a@b@host", err: `user "a@b" contains '@'`},
		{in: "a b@host", err: `user "a b" contains ' '`},
		{in: "a\tb@host", err: `contains '\t'`},
		{in: "a\nb@host", err: `contains '\n'`},
		{in: "a\x00b@host", err: `contains '\x00'`},
		{in: "a:b@host", err: `contains ':'`},
		{in: "a/b@host", err: `contains '/'`},
		{in: "a\u00a0b@host", err: `contains '\u00a0'`},
	} {
		got, err := ParseEndpoint(c.in)
		if c.err == "" {
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			}
			if back, err := ParseEndpoint(got.String()); err != nil || !reflect.DeepEqual(back, got) {
				t.Errorf("ParseEndpoint(%q).String() = %q does not parse back: %+v, %v", c.in, got.String(), back, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want error containing %q", c.in, got, err, c.err)
		}
		if !reflect.DeepEqual(got, Endpoint{}) {
			t.Errorf("ParseEndpoint(%q) returned %+v with its error", c.in, got)
		}
	}
}

func TestEndpointString(t *testing.T) {
	for _, c := range []struct {
		e    Endpoint
		want string
	}{
		{Endpoint{User: "u", Host: "h", Port: 22}, "u@h:22"},
		{Endpoint{User: "u", Host: "::1", Port: 22}, "u@[::1]:22"},
	} {
		e, want := c.e, c.want
		if got := e.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", e, got, want)
		}
	}
}
