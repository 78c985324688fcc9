package sshconfig

import (
	"os/exec"
	"strings"
	"testing"
)

// ParseForward reads -R and -L specs as ssh does: ssh -G with the spec on
// its command line prints the same forward.
func TestParseForwardMatchesSSH(t *testing.T) {
	ssh := requireSSH(t)
	cases := []struct {
		flag, spec string
	}{
		{"-R", "2220:localhost:22"},
		{"-R", "localhost:2220:localhost:22"},
		{"-R", "0.0.0.0:2220:10.0.0.5:22"},
		{"-R", "*:2220:localhost:22"},
		{"-R", ":2220:localhost:22"},
		{"-R", "[::1]:2220:[::1]:22"},
		{"-R", "0:localhost:22"},
		{"-R", "localhost:0:localhost:22"},
		{"-R", "/run/hub/remote-7.sock:localhost:22"},
		{"-R", "2220:/run/sshd.sock"},
		{"-R", "/run/a.sock:/run/b.sock"},
		{"-R", "2220:localhost:ssh"},
		{"-L", "15432:db.internal:5432"},
		{"-L", "127.0.0.1:15432:db.internal:5432"},
		{"-L", "/tmp/db.sock:db.internal:5432"},
	}
	for _, c := range cases {
		f, err := ParseForward(c.spec, c.flag == "-R")
		if err != nil {
			t.Errorf("%s %s: %v", c.flag, c.spec, err)
			continue
		}
		out, err := exec.Command(ssh, "-G", "-F", "/dev/null", c.flag, c.spec, "hub").Output()
		if err != nil {
			t.Fatalf("ssh -G %s %s: %v", c.flag, c.spec, err)
		}
		key := map[string]string{"-R": "remoteforward ", "-L": "localforward "}[c.flag]
		var want string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, key) {
				want = strings.TrimPrefix(line, key)
			}
		}
		if f.String() != want {
			t.Errorf("%s %s: parsed as %q, ssh -G prints %q", c.flag, c.spec, f.String(), want)
		}
	}
}

func TestParseForwardRefuses(t *testing.T) {
	for _, c := range []struct {
		spec   string
		remote bool
		want   string
	}{
		{"0:localhost:22", false, "port 0 is only for a remote forward"},
		{"2220:localhost:0", true, "port 0 is only"},
		{"2220:localhost", true, "is not a number"},
		{"2220::22", true, "has no host"},
		{"[::1:2220:localhost:22", true, "unbalanced"},
		{"a:b:c:d:e", true, "too many"},
		{"99999:localhost:22", true, "out of range"},
	} {
		_, err := ParseForward(c.spec, c.remote)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseForward(%q, %v) = %v, want an error containing %q", c.spec, c.remote, err, c.want)
		}
	}
}
