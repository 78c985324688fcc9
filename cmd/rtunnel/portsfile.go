package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// runtimeDir is where rtunnel writes files for scripts: systemd's
// $RUNTIME_DIRECTORY (RuntimeDirectory= in the unit; the first one if it
// names several), or "" outside such a unit.
func runtimeDir() string {
	dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	return dir
}

// portsFile is RUNTIME_DIRECTORY/<tunnel>.ports: one line "<forward> <port>"
// for each forward that asked the hub to pick a port (remote: host:0) and
// is up, in config order. It is replaced atomically (a reader sees the old
// or the new file, never half of one) and removed when no such forward is
// up, so a script's answer is never stale:
//
//	awk '$1 == "localhost:0->localhost:22" {print $2}' /run/rtunnel/hub.ports
type portsFile struct {
	path   string // "" when there is no runtime directory
	order  []string
	log    *slog.Logger
	mu     sync.Mutex
	ports  map[string]int
	warned bool
}

func newPortsFile(dir, tunnel string, labels []string, log *slog.Logger) *portsFile {
	p := &portsFile{order: labels, log: log, ports: map[string]int{}}
	if dir != "" {
		p.path = filepath.Join(dir, tunnel+".ports")
	}
	return p
}

// set records forward's port (0: down) and rewrites the file.
func (p *portsFile) set(forward string, port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if port == 0 {
		delete(p.ports, forward)
	} else {
		p.ports[forward] = port
	}
	if p.path == "" {
		return
	}
	if err := p.write(); err != nil && !p.warned {
		p.warned = true
		p.log.Warn("cannot write the allocated ports file; the port is still logged and exported as rtunnel_forward_allocated_port",
			"path", p.path, "err", err.Error())
	}
}

func (p *portsFile) write() error {
	var b strings.Builder
	for _, label := range p.order {
		if port, ok := p.ports[label]; ok {
			fmt.Fprintf(&b, "%s %d\n", label, port)
		}
	}
	if b.Len() == 0 {
		if err := os.Remove(p.path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	return writeReplacing(p.path, []byte(b.String()))
}
