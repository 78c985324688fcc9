package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/bad_*.err from the current messages (read every one before committing)")

// noLine lists the bad files whose single error cannot name a line: there is
// no line to name.
var noLine = map[string]bool{
	"testdata/bad_empty.yaml":         true,
	"testdata/bad_comments_only.yaml": true,
}

// parseFile is Load for files of the checkout. It skips Load's checks of the
// file itself: a checkout made under umask 002 (many desktops' default)
// leaves them group-writable, which Load refuses. read_test.go tests those
// checks with files of exact modes.
func parseFile(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, data)
}

// TestLoadBad parses every testdata/bad_*.yaml and compares the whole error
// text with the sibling .err file.
func TestLoadBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad_*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("found only %d bad_*.yaml files; run from the config directory", len(files))
	}
	for _, file := range files {
		golden := strings.TrimSuffix(file, ".yaml") + ".err"
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			cfg, err := parseFile(file)
			if err == nil {
				t.Fatalf("Parse accepted a bad file: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with the error: %+v", cfg)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want config.Errors: %v", err, err)
			}
			for _, e := range errs {
				if e.File != file {
					t.Errorf("Error.File = %q, want %q (in %q)", e.File, file, e.Error())
				}
				if e.Msg == "" {
					t.Errorf("empty Msg in %q", e.Error())
				}
				if e.Line <= 0 && !noLine[file] {
					t.Errorf("no line in %q", e.Error())
				}
				if !strings.HasPrefix(e.Error(), fmt.Sprintf("%s:%d: ", file, e.Line)) && !noLine[file] {
					t.Errorf("%q does not start with file:line", e.Error())
				}
			}
			got := err.Error()
			if *update {
				if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestLoadBad -update ./config/ and read the new file)", err)
			}
			if got != strings.TrimSuffix(string(want), "\n") {
				t.Errorf("error text differs from %s\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// TestGoldenFilesPaired catches an .err left behind by a renamed or deleted .yaml.
func TestGoldenFilesPaired(t *testing.T) {
	errFiles, _ := filepath.Glob("testdata/*.err")
	for _, f := range errFiles {
		if _, err := os.Stat(strings.TrimSuffix(f, ".err") + ".yaml"); err != nil {
			t.Errorf("%s has no .yaml: %v", f, err)
		}
	}
}

// defaults is a tunnel with every default spelled out as the documentation
// states it, not taken from the package's constants.
func defaults(name string, line int) Tunnel {
	return Tunnel{
		Name:                 name,
		Line:                 line,
		Keepalive:            Keepalive{Interval: 15 * time.Second, CountMax: 3},
		ConnectTimeout:       15 * time.Second,
		ExitOnForwardFailure: true,
		ForwardRetry:         time.Second,
		ForwardRetryFor:      2 * time.Minute,
		MaxConnections:       1024,
		Backoff:              Backoff{Initial: time.Second, Max: 60 * time.Second, Multiplier: 2, Jitter: 0.2, ResetAfter: 60 * time.Second},
		StaleSessionPoke:     true,
	}
}

func addr(host string, port int) Addr { return Addr{Host: host, Port: port} }

// goodConfigs are the expected results; td is testdata's absolute path, which
// relative key and known_hosts paths are resolved against.
func goodConfigs(td string) map[string]*Config {
	issue := defaults("master", 4)
	issue.Server = Endpoint{User: "tunnel", Host: "master.example.org", Port: 3333,
		Identities: []string{"/etc/rtunnel/id_ed25519"}, KnownHosts: "/etc/rtunnel/known_hosts", ConnectTimeout: 15 * time.Second, Line: 5}
	issue.Forwards = []Forward{{Remote: addr("localhost", 2220), Local: addr("localhost", 22), Line: 9}}

	minimal := defaults("edge-1", 4)
	minimal.Server = Endpoint{User: "tunnel", Host: "hub.example.org", Port: 22,
		Identities: []string{filepath.Join(td, "id_ed25519")}, KnownHosts: filepath.Join(td, "known_hosts"), ConnectTimeout: 15 * time.Second, Line: 5}
	minimal.Forwards = []Forward{{Remote: addr("localhost", 2220), Local: addr("localhost", 22), Line: 9}}

	hubA := Tunnel{
		Name: "hub.a",
		Line: 10,
		Server: Endpoint{User: "tunnel", Host: "2001:db8::1", Port: 2222,
			Identities: []string{"/etc/rtunnel/id_ed25519"}, KnownHosts: filepath.Join(td, "known_hosts"), ConnectTimeout: 20 * time.Second, Line: 11},
		Jump: []Endpoint{
			{User: "hop", Host: "vpn.example.org", Port: 2200,
				Identities: []string{"/etc/rtunnel/id_ed25519"}, KnownHosts: filepath.Join(td, "known_hosts"), ConnectTimeout: 20 * time.Second, Line: 15},
			{User: "hop2", Host: "10.0.0.2", Port: 22,
				Identities: []string{filepath.Join(td, "keys/id_hop2")}, KnownHosts: "/etc/rtunnel/known_hosts_hop2", ConnectTimeout: 30 * time.Second, Line: 16},
			{User: "hop3", Host: "::1", Port: 22,
				Identities: []string{"/etc/rtunnel/id_ed25519"}, KnownHosts: filepath.Join(td, "known_hosts"), ConnectTimeout: 20 * time.Second, Line: 20},
		},
		Forwards: []Forward{
			{Remote: addr("localhost", 2220), Local: addr("localhost", 22), Line: 22},
			{Remote: addr("127.0.0.1", 8080), Local: addr("::1", 8080), Line: 24},
			{Remote: addr("::1", 2220), Local: addr("192.0.2.7", 22), Line: 26},
		},
		Keepalive:            Keepalive{Interval: 500 * time.Millisecond, CountMax: 10},
		ConnectTimeout:       20 * time.Second,
		ExitOnForwardFailure: false,
		ForwardRetry:         250 * time.Millisecond,
		ForwardRetryFor:      0,
		MaxConnections:       16,
		Backoff:              Backoff{Initial: 500 * time.Millisecond, Max: 5 * time.Minute, Multiplier: 1.5, Jitter: 0, ResetAfter: 10 * time.Minute},
		StaleSessionPoke:     false,
	}
	hubB := defaults("hub_b", 43)
	hubB.Server = Endpoint{User: "t", Host: "hub-b.example.org", Port: 22,
		Identities: []string{filepath.Join(td, "id_b")}, KnownHosts: "/etc/rtunnel/known_hosts", ConnectTimeout: 15 * time.Second, Line: 44}
	hubB.Forwards = []Forward{{Remote: addr("localhost", 2221), Local: addr("localhost", 22), Line: 49}}
	hubB.Backoff.Max = time.Second

	bastion := defaults("via-bastion", 7)
	bastion.ConnectTimeout = 45 * time.Second
	bastion.Server = Endpoint{User: "tunnel", Host: "10.1.2.3", Port: 22,
		Identities: []string{"/etc/rtunnel/id_ed25519"}, KnownHosts: "/etc/rtunnel/known_hosts", ConnectTimeout: 45 * time.Second, Line: 8}
	bastion.Jump = []Endpoint{
		{User: "a", Host: "b", Port: 1, Identities: []string{"/etc/rtunnel/id_ed25519"}, KnownHosts: "/etc/rtunnel/known_hosts", ConnectTimeout: 45 * time.Second, Line: 12},
		{User: "c", Host: "d", Port: 22, Identities: []string{"/etc/rtunnel/id_ed25519"}, KnownHosts: "/etc/rtunnel/known_hosts", ConnectTimeout: 45 * time.Second, Line: 12},
	}
	bastion.Forwards = []Forward{{Remote: addr("localhost", 2220), Local: addr("localhost", 22), Line: 14}}

	kinds := defaults("remote-7", 2)
	kinds.Server = Endpoint{User: "tunnel", Host: "hub.example.org", Port: 22,
		Identities: []string{"/etc/rtunnel/id_ed25519"}, KnownHosts: "/etc/rtunnel/known_hosts", ConnectTimeout: 15 * time.Second, Line: 3}
	kinds.Forwards = []Forward{
		{RemotePath: "/run/hub/remote-7.sock", Local: addr("localhost", 22), Line: 7},
		{Remote: addr("localhost", 0), LocalPath: "/run/app/app.sock", Line: 9},
		{Remote: addr("localhost", 0), Local: addr("localhost", 8080), Line: 11},
	}
	kinds.LocalForwards = []LocalForward{
		{Listen: addr("127.0.0.1", 15432), Connect: addr("db.internal", 5432), Line: 14},
		{ListenPath: "/run/rtunnel/metrics.sock", ConnectPath: "/run/hub/metrics.sock", Line: 16},
	}
	onlyLocal := defaults("only-local", 18)
	onlyLocal.Server = Endpoint{User: "tunnel", Host: "hub.example.org", Port: 22,
		Identities: []string{"/etc/rtunnel/id_ed25519"}, KnownHosts: "/etc/rtunnel/known_hosts", ConnectTimeout: 15 * time.Second, Line: 19}
	onlyLocal.LocalForwards = []LocalForward{{Listen: addr("localhost", 15433), Connect: addr("::1", 5432), Line: 22}}

	fleet := defaults("fleet", 3)
	fleet.Server = Endpoint{User: "tunnel", Host: "hub.example.org", Port: 22,
		Identities: []string{"/etc/rtunnel/id_ed25519", filepath.Join(td, "keys/id_rsa")}, Certificate: "/etc/rtunnel/id_ed25519-cert.pub",
		IdentityAgent: "SSH_AUTH_SOCK", KnownHosts: "/var/lib/rtunnel/known_hosts", HostKeyAlias: "hub", AcceptNew: true, HashKnownHosts: true,
		ConnectTimeout: 15 * time.Second, Line: 4}
	fleet.Jump = []Endpoint{{User: "hop", Host: "vpn.example.org", Port: 22, IdentityAgent: "/run/rtunnel/agent.sock",
		KnownHosts: "/var/lib/rtunnel/known_hosts", HashKnownHosts: true, ConnectTimeout: 15 * time.Second, Line: 15}}
	fleet.Forwards = []Forward{{Remote: addr("localhost", 2220), Local: addr("localhost", 22), Line: 17}}

	return map[string]*Config{
		"testdata/good_forward_kinds.yaml": {Path: "testdata/good_forward_kinds.yaml", Log: Log{Level: "info", Format: "auto"},
			ShutdownGrace: 5 * time.Second, Tunnels: []Tunnel{kinds, onlyLocal}},
		"testdata/good_identity.yaml": {Path: "testdata/good_identity.yaml", Log: Log{Level: "info", Format: "auto"},
			ShutdownGrace: 5 * time.Second, Tunnels: []Tunnel{fleet}},
		"testdata/good_issue.yaml": {Path: "testdata/good_issue.yaml", Log: Log{Level: "info", Format: "text"},
			ShutdownGrace: 5 * time.Second, Tunnels: []Tunnel{issue}},
		"testdata/good_minimal.yaml": {Path: "testdata/good_minimal.yaml", Log: Log{Level: "info", Format: "auto"},
			ShutdownGrace: 5 * time.Second, Tunnels: []Tunnel{minimal}},
		"testdata/good_full.yaml": {Path: "testdata/good_full.yaml", Log: Log{Level: "debug", Format: "json"},
			ShutdownGrace: 0, Metrics: &Metrics{Listen: "[::1]:9810"}, Tunnels: []Tunnel{hubA, hubB}},
		"testdata/good_jump_string.yaml": {Path: "testdata/good_jump_string.yaml", Log: Log{Level: "info", Format: "auto"},
			ShutdownGrace: 5 * time.Second, Metrics: &Metrics{Listen: "0.0.0.0:9810", AllowRemote: true}, Tunnels: []Tunnel{bastion}},
	}
}

func TestLoadGood(t *testing.T) {
	td, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	want := goodConfigs(td)
	files, err := filepath.Glob("testdata/good_*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("%d good_*.yaml files but %d expectations: every good file needs its expected Config", len(files), len(want))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			w, ok := want[file]
			if !ok {
				t.Fatalf("no expected Config for %s", file)
			}
			got, err := parseFile(file)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			diffConfig(t, got, w)
		})
	}
}

// diffConfig reports each field that differs, so a failure says where.
func diffConfig(t *testing.T, got, want *Config) {
	t.Helper()
	if got.Path != want.Path || got.Log != want.Log || got.ShutdownGrace != want.ShutdownGrace {
		t.Errorf("Path/Log/ShutdownGrace = %q %+v %v, want %q %+v %v", got.Path, got.Log, got.ShutdownGrace, want.Path, want.Log, want.ShutdownGrace)
	}
	if !reflect.DeepEqual(got.Metrics, want.Metrics) {
		t.Errorf("Metrics = %+v, want %+v", got.Metrics, want.Metrics)
	}
	if len(got.Tunnels) != len(want.Tunnels) {
		t.Fatalf("%d tunnels, want %d: %+v", len(got.Tunnels), len(want.Tunnels), got.Tunnels)
	}
	for i := range want.Tunnels {
		g, w := reflect.ValueOf(got.Tunnels[i]), reflect.ValueOf(want.Tunnels[i])
		for f := 0; f < g.NumField(); f++ {
			if !reflect.DeepEqual(g.Field(f).Interface(), w.Field(f).Interface()) {
				t.Errorf("tunnels[%d].%s =\n  %#v\nwant\n  %#v", i, g.Type().Field(f).Name, g.Field(f).Interface(), w.Field(f).Interface())
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Config differs:\n got %+v\nwant %+v", got, want)
	}
}

// TestParseRelativeDir checks that relative paths follow the file, wherever it is.
func TestParseRelativeDir(t *testing.T) {
	data := []byte("tunnels:\n  - name: a\n    server: u@h\n    identity: id\n    known_hosts: ../kh\n" +
		"    jump: [{server: j@h, identity: hop/id}]\n    forwards: [{remote: localhost:1, local: localhost:2}]\n")
	cfg, err := Parse("/etc/rtunnel/rtunnel.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	tn := cfg.Tunnels[0]
	for _, c := range []struct{ got, want string }{
		{tn.Server.Identities[0], "/etc/rtunnel/id"},
		{tn.Server.KnownHosts, "/etc/kh"},
		{tn.Jump[0].Identities[0], "/etc/rtunnel/hop/id"},
		{tn.Jump[0].KnownHosts, "/etc/kh"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	const path = "testdata/does-not-exist.yaml"
	_, err := Load(path)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %T %v, want one config.Errors", err, err)
	}
	if want := path + ": cannot read config: no such file or directory"; err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

// TestPackagingExample keeps the shipped example valid.
func TestPackagingExample(t *testing.T) {
	cfg, err := parseFile("../packaging/rtunnel.example.yaml")
	if err != nil {
		t.Fatalf("the packaged example does not load:\n%v", err)
	}
	if len(cfg.Tunnels) != 1 || cfg.Tunnels[0].Name != "master" || cfg.Tunnels[0].MaxConnections != 256 {
		t.Errorf("unexpected example config: %+v", cfg.Tunnels)
	}
}

func TestErrorString(t *testing.T) {
	for _, c := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Key: "a.b", Msg: "bad"}, "f.yaml:3: a.b: bad"},
		{Error{File: "f.yaml", Msg: "bad"}, "f.yaml: bad"},
		{Error{File: "f.yaml", Line: 1, Msg: "bad"}, "f.yaml:1: bad"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.e, got, c.want)
		}
	}
	es := Errors{{File: "f", Line: 1, Msg: "a"}, {File: "f", Line: 2, Msg: "b"}}
	if got, want := es.Error(), "f:1: a\nf:2: b"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"0.0.0.0": false, "": false, "::": false, "192.0.2.1": false, "localhost.example.org": false, "[::1]": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
