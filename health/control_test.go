package health

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// controlGet asks the control socket at path for /status.
func controlGet(t *testing.T, path string) (Report, error) {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	resp, err := client.Get("http://rtunnel/status")
	if err != nil {
		return Report{}, err
	}
	defer resp.Body.Close()
	var r Report
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("control /status: %v\n%s", err, body)
	}
	return r, nil
}

// serveControl serves h on a control socket at path until the test ends.
func serveControl(t *testing.T, h *Health, path string) (stop func()) {
	t.Helper()
	cs, err := ListenControl(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- h.ServeControl(ctx, cs, ControlInfo{Version: "v1", PID: os.Getpid(), Config: "/etc/rtunnel/rtunnel.yaml"})
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := waitErr(t, errc, "ServeControl"); err != nil {
			t.Errorf("ServeControl: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestControlSocketServesTheDetailedView(t *testing.T) {
	h := New("test")
	h.AddTunnel("hub", []string{fwSSH})
	h.Retrying("hub", 1, time.Second, errors.New("dial tcp 198.51.100.9:22: connect: connection refused"))
	h.ReloadResult(errors.New("/etc/rtunnel/rtunnel.yaml:7: unknown key \"x\""))
	path := filepath.Join(t.TempDir(), "control.sock")
	stop := serveControl(t, h, path)

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("control socket mode %v, want a socket with 0660", fi.Mode())
	}
	if g, err := user.LookupGroup(ControlGroup); err == nil && os.Geteuid() == 0 {
		if gid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Gid)); gid != g.Gid {
			t.Errorf("control socket group %s, want %s (%s)", gid, g.Gid, ControlGroup)
		}
	}
	if left, _ := filepath.Glob(path + ".new-*"); len(left) > 0 {
		t.Errorf("temporary socket left: %v", left)
	}

	r, err := controlGet(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Detailed || r.Version != "v1" || r.PID != os.Getpid() || r.Config != "/etc/rtunnel/rtunnel.yaml" ||
		len(r.Tunnels) != 1 || !strings.Contains(r.Tunnels[0].LastError, "198.51.100.9:22") ||
		r.LastReload == nil || r.LastReload.OK || !strings.Contains(r.LastReload.Error, `unknown key "x"`) {
		t.Errorf("control /status = %+v", r)
	}

	stop()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("control socket left after exit: %v", err)
	}
}

func TestControlSocketReplacesAStaleOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	// A daemon killed with SIGKILL leaves its socket file behind.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()

	h := New("test")
	serveControl(t, h, path)
	if _, err := controlGet(t, path); err != nil {
		t.Fatalf("after replacing a stale socket: %v", err)
	}
}

func TestControlSocketLeavesALiveOneAndOtherFiles(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	h := New("test")
	serveControl(t, h, live)
	if _, err := ListenControl(live); err == nil || !strings.Contains(err.Error(), "another process answers on it") {
		t.Errorf("second ListenControl on a live socket: %v", err)
	}
	if _, err := controlGet(t, live); err != nil {
		t.Errorf("the first daemon's socket no longer answers: %v", err)
	}

	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenControl(file); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("ListenControl on a regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Errorf("the regular file was touched: %q", b)
	}

	if _, err := ListenControl(filepath.Join(dir, "missing", "control.sock")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("ListenControl in a missing directory: %v", err)
	}
}

// TestControlSocketKeepsAReplacement: a socket that another process put in
// place after ours is not removed when ours closes.
func TestControlSocketKeepsAReplacement(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	cs, err := ListenControl(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cs.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the replacement socket was removed: %v", err)
	}
}
