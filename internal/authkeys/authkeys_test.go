package authkeys

import (
	"strings"
	"testing"
)

const pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO62jBy8a6rgr+Q66CPYa9TXzrrZhqBz/QHd+6OhBWkk remote@host"

// The lines below are the guide's (docs/TOPOLOGIES.md), byte for byte.
func TestLineGuideTable(t *testing.T) {
	cases := []struct {
		spec Spec
		want string
	}{
		{Spec{Role: DirectRemote, Ports: []int{2220}},
			`restrict,port-forwarding,permitlisten="localhost:2220",permitopen="255.255.255.255:9",command="/bin/false" ` + pub},
		{Spec{Role: AMaster, Ports: []int{2210}},
			`restrict,port-forwarding,permitlisten="localhost:2210",permitopen="255.255.255.255:9",command="/bin/false" ` + pub},
		{Spec{Role: ARemoteVPN, Ports: []int{2210}},
			`restrict,port-forwarding,permitopen="localhost:2210",permitlisten="255.255.255.255:9",command="/bin/false" ` + pub},
		{Spec{Role: ARemoteMaster, Ports: []int{2220}},
			`restrict,port-forwarding,permitlisten="localhost:2220",permitopen="255.255.255.255:9",command="/bin/false" ` + pub},
		{Spec{Role: BRemote, Ports: []int{2221}},
			`restrict,port-forwarding,permitlisten="localhost:2221",permitopen="255.255.255.255:9",command="/bin/false" ` + pub},
		{Spec{Role: BMaster, Ports: []int{2220, 2221, 2222}},
			`restrict,port-forwarding,permitopen="localhost:2220",permitopen="localhost:2221",permitopen="localhost:2222",permitlisten="255.255.255.255:9",command="/bin/false" ` + pub},
		{Spec{Role: DirectRemote, Ports: []int{2220}, From: "203.0.113.0/24"},
			`restrict,port-forwarding,permitlisten="localhost:2220",permitopen="255.255.255.255:9",command="/bin/false",from="203.0.113.0/24" ` + pub},
		{Spec{Role: BRemote, Ports: []int{2223, 8080}, From: "198.51.100.7,!198.51.100.8"},
			`restrict,port-forwarding,permitlisten="localhost:2223",permitlisten="localhost:8080",permitopen="255.255.255.255:9",command="/bin/false",from="198.51.100.7,!198.51.100.8" ` + pub},
	}
	for _, c := range cases {
		got, err := Line(c.spec, []byte(pub+"\n"))
		if err != nil {
			t.Errorf("%s %v: %v", c.spec.Role, c.spec.Ports, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s %v:\n got %s\nwant %s", c.spec.Role, c.spec.Ports, got, c.want)
		}
		// Every value in the line passes OpenSSH's own rule.
		for _, opt := range strings.Split(strings.Fields(got)[0], ",") {
			kind, val, ok := strings.Cut(opt, "=")
			if ok && (kind == "permitlisten" || kind == "permitopen") {
				if err := CheckPermit(kind, strings.Trim(val, `"`)); err != nil {
					t.Errorf("%s: %v", opt, err)
				}
			}
		}
	}
}

func TestInvalidFormsRefused(t *testing.T) {
	cases := []struct {
		port string
		want []string
	}{
		{"none", []string{`permitlisten="none"`, "sshd_config only", "refuses the whole key", "255.255.255.255:9"}},
		{`""`, []string{`permitlisten=""`, "invalid in authorized_keys", "Failed publickey"}},
		{"", []string{`permitlisten=""`}},
		{"0", []string{`permitlisten="localhost:0"`, "port 0 fails validation"}},
		{"localhost:0", []string{`permitlisten="localhost:0"`}},
		{"70000", []string{"out of range"}},
		{"ssh", []string{"not a port number"}},
	}
	for _, c := range cases {
		_, err := ParsePort(c.port)
		if err == nil {
			t.Errorf("ParsePort(%q) accepted", c.port)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParsePort(%q): %q lacks %q", c.port, err, w)
			}
		}
	}
	for _, ok := range []string{"2220", " 2221", "localhost:2222", `"2223"`} {
		if _, err := ParsePort(ok); err != nil {
			t.Errorf("ParsePort(%q): %v", ok, err)
		}
	}
	for _, v := range []string{"none", "", "localhost:0", "localhost", "localhost:x", ":22"} {
		if err := CheckPermit("permitlisten", v); err == nil {
			t.Errorf("CheckPermit(%q) accepted", v)
		}
	}
	for _, v := range []string{"localhost:2220", "255.255.255.255:9", "2220", "*:2220", "localhost:*"} {
		if err := CheckPermit("permitlisten", v); err != nil {
			t.Errorf("CheckPermit(%q): %v", v, err)
		}
	}
}

func TestBadInputs(t *testing.T) {
	good := Spec{Role: DirectRemote, Ports: []int{2220}}
	cases := []struct {
		name string
		spec Spec
		key  string
		want string
	}{
		{"private key", good, "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n", "private key"},
		{"options already", good, `restrict ` + pub, "already has options"},
		{"two keys", good, pub + "\n" + pub, "more than one"},
		{"garbage", good, "hello", "not an OpenSSH public key"},
		{"empty", good, "\n", "empty"},
		{"no port", Spec{Role: BMaster}, pub, "no port"},
		{"port twice", Spec{Role: BMaster, Ports: []int{2220, 2220}}, pub, "twice"},
		{"unknown role", Spec{Role: "c-master", Ports: []int{1}}, pub, "unknown role"},
		{"from host name", Spec{Role: BRemote, Ports: []int{2221}, From: "example.org"}, pub, "UseDNS"},
		{"from quote", Spec{Role: BRemote, Ports: []int{2221}, From: `1.2.3.4"`}, pub, "no quotes"},
	}
	for _, c := range cases {
		if _, err := Line(c.spec, []byte(c.key)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}

func TestRoles(t *testing.T) {
	for _, r := range Roles() {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%s) = %v, %v", r, got, err)
		}
		if r.Describe() == "" {
			t.Errorf("%s has no description", r)
		}
	}
}
