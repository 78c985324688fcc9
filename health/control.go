package health

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// ControlGroup is the group whose members may open the control socket, besides root.
const ControlGroup = "rtunnel"

// controlMode lets the owner (the daemon's user) and ControlGroup connect:
// connecting to a Unix socket needs write permission on it.
const controlMode = 0o660

// ControlSocket is the Unix socket that serves the detailed state (error
// texts with paths, fingerprints and peer addresses) to root and the
// members of ControlGroup only.
type ControlSocket struct {
	path string
	ln   *net.UnixListener
	id   os.FileInfo // the socket file this process created, to remove only it
}

// ListenControl creates the control socket at path, mode 0660, group
// ControlGroup when that group exists. The socket is bound under a
// temporary name, given its mode and group, and renamed into place, so no
// one can connect while it is still open to all, and a stale socket left by
// a killed daemon is replaced in one step. A socket some process still
// answers on, or a path that is not a socket, is left alone and reported.
func ListenControl(path string) (*ControlSocket, error) {
	if err := checkStale(path); err != nil {
		return nil, err
	}
	tmp := path + ".new-" + strconv.Itoa(os.Getpid())
	_ = os.Remove(tmp) // left by an earlier process that had our pid
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // Close removes path itself, if it is still ours
	fail := func(err error) (*ControlSocket, error) {
		ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, controlMode); err != nil {
		return fail(err)
	}
	if err := chownGroup(tmp); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	id, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &ControlSocket{path: path, ln: ln, id: id}, nil
}

// checkStale returns nil if path is free or holds a socket nobody answers
// on (left by a daemon that was killed).
func checkStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: the path exists and is not a socket (%s); not replacing it: remove it if it is not needed", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another process answers on it (a second rtunnel with the same RUNTIME_DIRECTORY?); not replacing it", path)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil // stale: replaced by the rename
	}
	return fmt.Errorf("control socket %s: cannot tell whether it is in use: %w", path, err)
}

// chownGroup gives path to ControlGroup when that group exists. Without
// the group (a machine without the package's sysusers entry) the socket
// keeps the daemon's own group.
func chownGroup(path string) error {
	g, err := user.LookupGroup(ControlGroup)
	if err != nil {
		return nil
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return nil
	}
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("give it to group %s: %w", ControlGroup, err)
	}
	return nil
}

// Path is where the socket is.
func (c *ControlSocket) Path() string { return c.path }

// Close stops listening and removes the socket file, unless another
// process has since replaced it with its own.
func (c *ControlSocket) Close() error {
	err := c.ln.Close()
	if cur, lerr := os.Lstat(c.path); lerr == nil && os.SameFile(cur, c.id) {
		_ = os.Remove(c.path)
	}
	return err
}

// ServeControl serves the detailed state on cs until ctx is done: GET
// /status answers a [Report] with every field. It returns after its
// goroutines have ended, and closes cs, removing its file.
func (h *Health) ServeControl(ctx context.Context, cs *ControlSocket, info ControlInfo) error {
	defer cs.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, h.DetailedReport(info))
	})
	if err := serve(ctx, cs.ln, mux); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}
