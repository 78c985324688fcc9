package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtunnel/rtunnel/internal/daemontest"
	"github.com/rtunnel/rtunnel/internal/sshdtest"
)

// runtimeDir is a short directory standing for the unit's RuntimeDirectory
// (a socket path must fit in 108 bytes), mode 0755 as systemd creates it.
func runtimeDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rtunnel-run-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// rtunnelStatus runs `rtunnel status args...` and returns its exit status,
// stdout and stderr.
func rtunnelStatus(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	st := daemontest.Start(t, append([]string{"status"}, args...), env...)
	code, ok := st.Wait(15 * time.Second)
	if !ok {
		t.Fatalf("rtunnel status %v did not exit within 15s", args)
	}
	t.Logf("rtunnel status %s: exit %d\n%s%s", strings.Join(args, " "), code, st.Stdout(), st.Raw())
	return code, st.Stdout(), st.Raw()
}

// statusJSON is the part of `rtunnel status --json` these tests read.
type statusJSON struct {
	Detailed   bool   `json:"detailed"`
	PID        int    `json:"pid"`
	Config     string `json:"config"`
	LastReload *struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"last_reload"`
	Tunnels []struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		LastError string `json:"last_error"`
	} `json:"tunnels"`
}

// TestStatusFindsTheDaemonThroughItsControlSocket: `rtunnel status` needs
// neither the config file nor its metrics.listen: it asks the socket in
// the runtime directory, shows the last error with its age and that the
// tunnel has recovered since, and after a refused reload the running
// tunnels and why the file on disk was refused.
func TestStatusFindsTheDaemonThroughItsControlSocket(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	cfg := w.config(t, [][2]string{w.sshForward()}, "")
	metricsAddr := withMetrics(t, cfg)
	run := runtimeDir(t)
	env := []string{"RUNTIME_DIRECTORY=" + run}
	d := daemontest.Start(t, []string{"up", "--config", cfg}, env...)
	waitForwardUp(t, d, 0, 20*time.Second)
	sock := filepath.Join(run, "control.sock")
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Fatalf("control socket %s: %v %v, want a socket with mode 0660", sock, fi.Mode(), err)
	}

	// A failure, then recovery: LAST ERROR stays, with its age and "recovered since".
	w.hub.Kill()
	waitMetric(t, metricsAddr, `rtunnel_tunnel_up{tunnel="hub"}`, 0, 10*time.Second)
	mark := d.Mark()
	w.hub.Restart(t)
	waitForwardUp(t, d, mark, 20*time.Second)

	// The file on disk breaks, and its metrics.listen moves.
	broken := "metrics: {listen: 127.0.0.1:1}\ntunnels:\n  - name: hub\n    server: [oops\n"
	if err := os.WriteFile(cfg, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := rtunnelStatus(t, env, "--config", cfg) // the default socket of $RUNTIME_DIRECTORY
	if code != 0 {
		t.Fatalf("rtunnel status with a broken config on disk: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		fmt.Sprintf("rtunnel test (pid %d) running %s since ", d.PID(), cfg),
		"\nhub  ", " up ", "ago, recovered since: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rtunnel status lacks %q:\n%s", want, out)
		}
	}

	// A reload of the broken file is refused; the old tunnel keeps running.
	d.Signal(syscall.SIGHUP)
	var st statusJSON
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, errOut = rtunnelStatus(t, nil, "--json", "--socket", sock)
		if code != 0 {
			t.Fatalf("rtunnel status --json --socket: exit %d\n%s%s", code, out, errOut)
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		if st.LastReload != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling a measurement, bounded
	}
	if !st.Detailed || st.PID != d.PID() || st.LastReload == nil || st.LastReload.OK || !strings.Contains(st.LastReload.Error, cfg) ||
		len(st.Tunnels) != 1 || st.Tunnels[0].State != "up" {
		t.Fatalf("status --json after a refused reload: %+v\n%s", st, out)
	}
	code, out, errOut = rtunnelStatus(t, nil, "--socket", sock)
	if code != 0 || !strings.Contains(out, "REFUSED, the tunnels below still run the previous config; the file on disk has problems:\n  "+cfg) ||
		!strings.Contains(out, "\nhub  ") {
		t.Errorf("rtunnel status after a refused reload: exit %d\n%s%s", code, out, errOut)
	}

	// The tunnel still carries logins.
	w.echoLogin(t)

	// Removed on exit.
	d.Signal(syscall.SIGTERM)
	if code, ok := d.Wait(10 * time.Second); !ok || code != 0 {
		t.Fatalf("rtunnel up: exit %d (exited %v)", code, ok)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left after exit: %v", err)
	}
	code, _, errOut = rtunnelStatus(t, nil, "--socket", sock, "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "no rtunnel daemon answers on "+sock) {
		t.Errorf("rtunnel status with no daemon: exit %d\n%s", code, errOut)
	}
}

// TestPublicHTTPView: the metrics listener answers only requests that name
// it (DNS rebinding), and shows states and counters but no error text,
// which the control socket shows.
func TestPublicHTTPView(t *testing.T) {
	t.Parallel()
	w := newDirect(t, directOpts{})
	// The forward's port is not allowed by the key: refused, with an error text.
	cfg := w.config(t, [][2]string{{"localhost:" + strconv.Itoa(sshdtest.FreePort(t)), w.remote.Addr}}, "")
	metricsAddr := withMetrics(t, cfg)
	run := runtimeDir(t)
	d := daemontest.Start(t, []string{"up", "--config", cfg}, "RUNTIME_DIRECTORY="+run)
	d.WaitFrom(0, 20*time.Second, "a refused forward", func(e daemontest.Entry) bool {
		return strings.Contains(e.Str("err"), "refused")
	})
	_, port, _ := net.SplitHostPort(metricsAddr)

	for _, tc := range []struct {
		host string
		want int
	}{
		{metricsAddr, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"localhost", http.StatusOK},
		{"rebind.attacker.example:" + port, http.StatusMisdirectedRequest},
		{"rebind.attacker.example", http.StatusMisdirectedRequest},
		{"127.0.0.1:1", http.StatusOK}, // the hub's end of a forward, as the fleet view scrapes
		{"0.0.0.0:" + port, http.StatusMisdirectedRequest},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
		req.Host = tc.host
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /metrics with Host %q: %d, want %d", tc.host, resp.StatusCode, tc.want)
		}
	}

	// The public view shows the tunnel and its state, no error text.
	code, body := httpGet(t, "http://"+metricsAddr+"/status")
	if code != http.StatusOK || !strings.Contains(body, `"name": "hub"`) || strings.Contains(body, "last_error") ||
		strings.Contains(body, "refused remote forward") || strings.Contains(body, w.hub.Addr) {
		t.Errorf("public /status: %d\n%s", code, body)
	}
	if code, body := httpGet(t, "http://"+metricsAddr+"/readyz"); code != http.StatusServiceUnavailable || body != "hub: retrying\n" && body != "hub: connecting\n" {
		t.Errorf("public /readyz: %d %q", code, body)
	}
	code, out, errOut := rtunnelStatus(t, nil, "--address", metricsAddr)
	if code != 0 || !strings.HasPrefix(out, "public view from http://"+metricsAddr+"/status: no error texts\n") {
		t.Errorf("rtunnel status --address: exit %d\n%s%s", code, out, errOut)
	}
	// The control socket has it.
	code, out, errOut = rtunnelStatus(t, nil, "--socket", filepath.Join(run, "control.sock"))
	if code != 0 || !strings.Contains(out, "refused remote forward") || !strings.Contains(out, w.hub.Addr) {
		t.Errorf("rtunnel status through the control socket: exit %d\n%s%s", code, out, errOut)
	}
}

// TestStatusPermissionDenied: a user who is neither root nor in the
// socket's group is told so; one in the group reads it. The daemon also
// replaces a stale socket left by a killed one.
func TestStatusPermissionDenied(t *testing.T) {
	t.Parallel()
	sshdtest.RequireTools(t, "setpriv")
	if os.Geteuid() != 0 {
		sshdtest.RequireTools(t, "root-privileges-for-setpriv")
	}
	w := newDirect(t, directOpts{})
	cfg := w.config(t, [][2]string{w.sshForward()}, "")
	run := runtimeDir(t)
	sock := filepath.Join(run, "control.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close() // as a daemon killed with SIGKILL leaves it

	d := daemontest.Start(t, []string{"up", "--config", cfg}, "RUNTIME_DIRECTORY="+run)
	waitForwardUp(t, d, 0, 20*time.Second)
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	gid := fi.Sys().(*syscall.Stat_t).Gid

	// A copy of the binary that a plain user may run (the shared one sits
	// in a 0700 directory).
	binDir := runtimeDir(t)
	bin := filepath.Join(binDir, "rtunnel")
	data, err := os.ReadFile(daemontest.Binary(t))
	if err == nil {
		err = os.WriteFile(bin, data, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	const uid = "12345" // no such user: neither root nor in any group
	asUser := func(groups string) (int, string) {
		args := []string{"--reuid=" + uid, "--regid=" + uid}
		if groups == "" {
			args = append(args, "--clear-groups")
		} else {
			args = append(args, "--groups="+groups)
		}
		cmd := exec.Command("setpriv", append(args, bin, "status", "--socket", sock)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "GORACE=atexit_sleep_ms=0"}
		out, err := cmd.CombinedOutput()
		t.Logf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	code, out := asUser("")
	if code != 77 || !strings.Contains(out, "cannot open the control socket "+sock+": permission denied: run as root or as a member of group rtunnel") {
		t.Errorf("rtunnel status as uid %s: exit %d, want 77\n%s", uid, code, out)
	}
	code, out = asUser(strconv.Itoa(int(gid)))
	if code != 0 || !strings.Contains(out, "\nhub  ") {
		t.Errorf("rtunnel status as uid %s in the socket's group %d: exit %d\n%s", uid, gid, code, out)
	}
}
