package config

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fuzzFile is the name the fuzzed files are parsed as.
const fuzzFile = "fuzz/rtunnel.yaml"

// FuzzParse: Parse never panics, returns either a config that keeps the
// promises the rest of rtunnel relies on, or Errors that each name the file
// and say something.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"tunnels: [{name: a, server: u@h, identity: i, known_hosts: k, forwards: [{remote: 'localhost:1', local: 'localhost:2'}]}]",
		"tunnels: [{name: a, server: u@h, identity: i, known_hosts: k, forwards: [~]}]",
		"tunnels: [{name: a, server: u@h, identity: i, known_hosts: k, forwards: [{remote: /s, local: 'x:0'}, {remote: 'h:0', local: /l}]}]",
		"tunnels: [{name: a, server: u@h, identity: i, known_hosts: k, local_forwards: [{listen: 'h:1', connect: /c}, {listen: /l, connect: 'x:2'}]}]",
		"tunnels: [~]",
		"tunnels: [{name: a, server: u@h, identity: i, known_hosts: k, jump: 'a@b,c@[::1]:2', forwards: [{remote: ':1', local: 'x:2'}]}]",
		"tunnels:\n- &t {name: a}\n- *t\n",
		"metrics: {listen: ':0'}\n",
		"a: !!float NaN\n",
		"\xef\xbb\xbftunnels: []\n",
		"\xff\xfet\x00:\x00",
		"---\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(fuzzFile, data)
		if err != nil {
			checkErrors(t, cfg, err)
			// The same input gives the same report.
			if _, again := Parse(fuzzFile, data); again == nil || again.Error() != err.Error() {
				t.Fatalf("second Parse differs:\n%v\nthen\n%v", err, again)
			}
			return
		}
		checkConfig(t, cfg)
	})
}

func checkErrors(t *testing.T, cfg *Config, err error) {
	t.Helper()
	if cfg != nil {
		t.Fatalf("config returned with an error: %+v", cfg)
	}
	errs, ok := err.(Errors)
	if !ok {
		t.Fatalf("error is %T, not config.Errors: %v", err, err)
	}
	if len(errs) == 0 {
		t.Fatal("empty Errors")
	}
	for _, e := range errs {
		if e == nil {
			t.Fatalf("nil *Error in %v", errs)
		}
		if e.File != fuzzFile || e.Msg == "" || e.Line < 0 {
			t.Fatalf("bad Error %+v", *e)
		}
	}
	// cmd/rtunnel finds them this way.
	var viaAs Errors
	if !errors.As(err, &viaAs) || len(viaAs) != len(errs) {
		t.Fatalf("errors.As(err, &Errors) failed on %v", err)
	}
}

func checkConfig(t *testing.T, cfg *Config) {
	t.Helper()
	if cfg == nil || cfg.Path != fuzzFile {
		t.Fatalf("nil config or wrong Path: %+v", cfg)
	}
	if len(cfg.Tunnels) == 0 {
		t.Fatal("accepted with no tunnels")
	}
	switch cfg.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		t.Fatalf("log level %q", cfg.Log.Level)
	}
	switch cfg.Log.Format {
	case "auto", "text", "json", "journal":
	default:
		t.Fatalf("log format %q", cfg.Log.Format)
	}
	if cfg.ShutdownGrace < 0 || cfg.ShutdownGrace > MaxShutdownGrace {
		t.Fatalf("shutdown_grace %v", cfg.ShutdownGrace)
	}
	if cfg.Metrics != nil && cfg.Metrics.Listen == "" {
		t.Fatalf("metrics without listen: %+v", cfg.Metrics)
	}
	names := map[string]bool{}
	ports := map[hubPort]string{} // the tunnel asking for it
	for i, tn := range cfg.Tunnels {
		for _, fw := range tn.Forwards {
			hp := hubPort{hub: hubOf(tn), port: fw.Remote.Port}
			if other, taken := ports[hp]; taken && other != tn.Name {
				t.Fatalf("tunnels %q and %q both ask %s for port %d", other, tn.Name, hp.hub, hp.port)
			}
			ports[hp] = tn.Name
		}
		if !tunnelNamePattern.MatchString(tn.Name) || names[tn.Name] {
			t.Fatalf("tunnels[%d]: bad or repeated name %q", i, tn.Name)
		}
		names[tn.Name] = true
		checkEndpoint(t, "server", tn.Server)
		for _, j := range tn.Jump {
			checkEndpoint(t, "jump", j)
		}
		if len(tn.Forwards) == 0 && len(tn.LocalForwards) == 0 {
			t.Fatalf("tunnel %q has no forwards", tn.Name)
		}
		// A side is a socket path or host:port; only a remote side may ask
		// for port 0 (the hub picks), and only those may repeat.
		side := func(a Addr, path string, zero bool) bool {
			if path != "" {
				return checkSocketPath(path) == nil && a == Addr{}
			}
			return a.Host != "" && a.Port >= 0 && a.Port <= 65535 && (a.Port != 0 || zero)
		}
		remotes := map[string]bool{}
		for _, fw := range tn.Forwards {
			if !side(fw.Remote, fw.RemotePath, true) || !side(fw.Local, fw.LocalPath, false) {
				t.Fatalf("tunnel %q: bad forward %+v", tn.Name, fw)
			}
			if fw.Remote.Port == 0 && fw.RemotePath == "" {
				continue
			}
			if remotes[fw.RemoteString()] {
				t.Fatalf("tunnel %q: remote %v forwarded twice", tn.Name, fw.RemoteString())
			}
			remotes[fw.RemoteString()] = true
		}
		for _, lf := range tn.LocalForwards {
			if !side(lf.Listen, lf.ListenPath, false) || !side(lf.Connect, lf.ConnectPath, false) {
				t.Fatalf("tunnel %q: bad local forward %+v", tn.Name, lf)
			}
		}
		if tn.Keepalive.Interval <= 0 || tn.Keepalive.CountMax < 1 || tn.ConnectTimeout <= 0 || tn.MaxConnections < 1 {
			t.Fatalf("tunnel %q: bad limits %+v", tn.Name, tn)
		}
		b := tn.Backoff
		if b.Initial <= 0 || b.Max < b.Initial || math.IsNaN(b.Multiplier) || b.Multiplier < 1 ||
			math.IsNaN(b.Jitter) || b.Jitter < 0 || b.Jitter >= 1 || b.ResetAfter < 0 {
			t.Fatalf("tunnel %q: bad backoff %+v", tn.Name, b)
		}
	}
}

func checkEndpoint(t *testing.T, what string, e Endpoint) {
	t.Helper()
	if e.User == "" || e.Host == "" || e.Port < 1 || e.Port > 65535 {
		t.Fatalf("bad %s %+v", what, e)
	}
	if (len(e.Identities) == 0 && e.IdentityAgent == "") || !filepath.IsAbs(e.KnownHosts) || e.ConnectTimeout <= 0 {
		t.Fatalf("%s %+v: an identity or an agent, an absolute known_hosts and connect_timeout must be set", what, e)
	}
	for _, id := range e.Identities {
		if !filepath.IsAbs(id) {
			t.Fatalf("%s %+v: identity %q must be absolute", what, e, id)
		}
	}
}

var addrSeeds = []string{
	"localhost:2220", "[::1]:22", "127.0.0.1:1", ":22", "[]:1", "localhost:0", "h:65536", "[::1%lo]:22",
	"[a.b]:1", "::1:22", "[::ffff:1.2.3.4]:80", "host:022", "x:+1", "",
}

// FuzzParseAddr: what ParseAddr accepts, Addr.String() writes back the same.
func FuzzParseAddr(f *testing.F) {
	for _, s := range addrSeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, allowZero bool) {
		a, err := ParseAddr(s, allowZero)
		if err != nil {
			if a != (Addr{}) || err.Error() == "" {
				t.Fatalf("ParseAddr(%q) = %+v, %q", s, a, err)
			}
			return
		}
		if a.Host == "" || a.Port < 0 || a.Port > 65535 || a.Port == 0 && !allowZero {
			t.Fatalf("ParseAddr(%q, %v) = %+v", s, allowZero, a)
		}
		back, err := ParseAddr(a.String(), allowZero)
		if err != nil || back != a {
			t.Fatalf("ParseAddr(%q) = %+v; its String() %q parses to %+v, %v", s, a, a.String(), back, err)
		}
	})
}

// FuzzParseEndpoint: no panic; what ParseEndpoint accepts is a usable
// user@host:port, and Endpoint.String() writes back the same.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range append(addrSeeds, "tunnel@master.example.org:3333", "u@[::1]", "u@::1", "u@[::1", "a@b@c",
		"@h", "u@", "u@h:0", "u@2001:db8::1:22", "u\n@h", "u@[h]", "u@[::1]:2]") {
		f.Add(s)
		f.Add("u@" + s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEndpoint(s)
		if err != nil {
			if !reflect.DeepEqual(e, Endpoint{}) || err.Error() == "" {
				t.Fatalf("ParseEndpoint(%q) = %+v, %q", s, e, err)
			}
			return
		}
		if e.User == "" || e.Host == "" || e.Port < 1 || e.Port > 65535 {
			t.Fatalf("ParseEndpoint(%q) = %+v", s, e)
		}
		back, err := ParseEndpoint(e.String())
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("ParseEndpoint(%q) = %+v; its String() %q parses to %+v, %v", s, e, e.String(), back, err)
		}
	})
}
