package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/rtunnel/rtunnel/"

// deps lists every package pkg depends on, transitively, without the
// standard library.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", mod+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	var ds []string
	for _, d := range strings.Fields(string(out)) {
		if d != mod+pkg {
			ds = append(ds, d)
		}
	}
	return ds
}

func TestDependencyDirection(t *testing.T) {
	rules := []struct {
		pkg     string
		allowed []string // prefixes; anything else is a violation
	}{
		{"config", []string{"go.yaml.in/yaml/v3", mod + "config/sshconfig", mod + "internal/sshpattern"}},
		{"config/sshconfig", []string{mod + "internal/sshpattern"}},
		{"tunnel", []string{"golang.org/x/crypto/", "golang.org/x/sys/", mod + "internal/sshpattern"}},
		{"internal/sshpattern", nil}, // the standard library only
		{"reconnect", nil},           // the standard library only
		{"hubs", []string{mod + "reconnect"}},
	}
	for _, r := range rules {
		for _, d := range deps(t, r.pkg) {
			ok := false
			for _, a := range r.allowed {
				if strings.HasPrefix(d, a) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s must not depend on %s (allowed: stdlib, %s)", r.pkg, d, strings.Join(r.allowed, ", "))
			}
		}
	}
	// health may use its libraries' dependencies but no rtunnel package.
	for _, d := range deps(t, "health") {
		if strings.HasPrefix(d, mod) {
			t.Errorf("health must not import %s", d)
		}
	}
	// No product package imports test helpers.
	for _, p := range []string{"cmd/rtunnel", "config", "tunnel", "reconnect", "health"} {
		for _, d := range deps(t, p) {
			// internal/authkeys (the hub-side key lines) and
			// internal/sshpattern (OpenSSH's host patterns) are product
			// code; the rest of internal/ is test helpers.
			helper := strings.HasPrefix(d, mod+"internal/") && d != mod+"internal/authkeys" && d != mod+"internal/sshpattern"
			if helper || strings.HasPrefix(d, "go.uber.org/goleak") {
				t.Errorf("%s imports the test helper %s", p, d)
			}
		}
	}
}
