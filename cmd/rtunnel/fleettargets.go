package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// File names fleet-targets writes; deploy/prometheus/fleet.prometheus.yml
// reads them.
const (
	fleetMetricsFile = "rtunnel-metrics.json"
	fleetSSHFile     = "rtunnel-ssh.json"
)

// fleetRemote is one inventory line.
type fleetRemote struct {
	name        string
	sshPort     int // the hub port forwarded to the remote's sshd
	metricsPort int // the hub port forwarded to the remote's rtunnel /metrics; 0 = none
}

func newFleetTargetsCmd(stdout io.Writer) *cobra.Command {
	var inventory, outDir, hub, address string
	cmd := &cobra.Command{
		Use:   "fleet-targets --inventory FILE --out DIR",
		Short: "Turn an inventory of remotes into Prometheus file_sd targets for the hub's fleet view",
		Long: "Reads an inventory of the remotes that forward to this hub, one per line:\n\n" +
			"  NAME SSH_PORT [METRICS_PORT]    # e.g. remote-a 2221 9221\n\n" +
			"(SSH_PORT: the hub port forwarded to the remote's sshd; METRICS_PORT: the hub port forwarded\n" +
			"to the remote's rtunnel metrics.listen, allowed by `authorized-key --metrics-port`). It writes\n" +
			"two Prometheus file_sd files into DIR, each target labelled remote=NAME and hub=HUB:\n" +
			"  " + fleetMetricsFile + "  the forwarded /metrics ports, to scrape\n" +
			"  " + fleetSSHFile + "      the forwarded sshd ports, for blackbox_exporter's ssh_banner probe\n" +
			"Files are replaced by rename, so Prometheus never reads half a file. The scrape jobs that\n" +
			"read them are in deploy/prometheus/fleet.prometheus.yml; see docs/FLEET.md.",
		Example: "  rtunnel fleet-targets --inventory /etc/rtunnel/fleet.txt --out /etc/prometheus/rtunnel-fleet --hub vpn1",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fail := func(err error) error { return &exitError{code: exitConfig, err: err} }
			if inventory == "" || outDir == "" {
				return fail(fmt.Errorf("--inventory FILE and --out DIR are required"))
			}
			if net.ParseIP(address) == nil {
				return fail(fmt.Errorf("--address %q: give the IP address the hub's forwards listen on, e.g. 127.0.0.1", address))
			}
			if hub == "" {
				h, err := os.Hostname()
				if err != nil {
					return fail(fmt.Errorf("--hub: no host name (%v); give the hub's name", err))
				}
				hub = h
			}
			data, err := os.ReadFile(inventory)
			if err != nil {
				return fail(err)
			}
			remotes, err := parseInventory(inventory, data)
			if err != nil {
				return fail(err)
			}
			metrics, ssh := fleetFileSD(remotes, hub, address)
			for name, content := range map[string][]byte{fleetMetricsFile: metrics, fleetSSHFile: ssh} {
				if err := writeReplacing(filepath.Join(outDir, name), content); err != nil {
					// Not the inventory's fault: a directory missing or not writable.
					return &exitError{code: exitFail, err: err}
				}
			}
			nm := 0
			for _, r := range remotes {
				if r.metricsPort != 0 {
					nm++
				}
			}
			fmt.Fprintf(stdout, "%d remotes: %d ssh_banner targets in %s, %d metrics targets in %s\n",
				len(remotes), len(remotes), filepath.Join(outDir, fleetSSHFile), nm, filepath.Join(outDir, fleetMetricsFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&inventory, "inventory", "", "the inventory file: NAME SSH_PORT [METRICS_PORT] per line")
	f.StringVar(&outDir, "out", "", "directory for the file_sd files (Prometheus's file_sd_configs read them)")
	f.StringVar(&hub, "hub", "", "the hub label of every target (default: this host's name)")
	f.StringVar(&address, "address", "127.0.0.1", "address of the forwarded ports as Prometheus on the hub reaches them")
	return cmd
}

var fleetNameRE = lazyRegexp(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// parseInventory reads the inventory; every error names file:line and the fix.
func parseInventory(path string, data []byte) ([]fleetRemote, error) {
	var out []fleetRemote
	nameAt := map[string]int{}
	portAt := map[int]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("%s:%d: want NAME SSH_PORT [METRICS_PORT], got %d fields", path, n, len(f))
		}
		r := fleetRemote{name: f[0]}
		if !fleetNameRE().MatchString(r.name) {
			return nil, fmt.Errorf("%s:%d: name %q: use letters, digits, '.', '_' and '-' (it becomes the remote label)", path, n, r.name)
		}
		if at, dup := nameAt[r.name]; dup {
			return nil, fmt.Errorf("%s:%d: remote %q is already on line %d: each remote once", path, n, r.name, at)
		}
		nameAt[r.name] = n
		ports := []*int{&r.sshPort, &r.metricsPort}
		for i, s := range f[1:] {
			p, err := strconv.Atoi(s)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("%s:%d: %q is not a port (1-65535)", path, n, s)
			}
			if at, dup := portAt[p]; dup {
				return nil, fmt.Errorf("%s:%d: port %d is already used on line %d: the hub binds each forwarded port once", path, n, p, at)
			}
			portAt[p] = n
			*ports[i] = p
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no remotes: write one NAME SSH_PORT [METRICS_PORT] line per remote", path)
	}
	return out, nil
}

// targetGroup is one entry of a Prometheus file_sd file.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// fleetFileSD builds both files' content, in inventory order.
func fleetFileSD(remotes []fleetRemote, hub, address string) (metrics, ssh []byte) {
	mg, sg := []targetGroup{}, []targetGroup{}
	for _, r := range remotes {
		labels := map[string]string{"remote": r.name, "hub": hub}
		sg = append(sg, targetGroup{Targets: []string{net.JoinHostPort(address, strconv.Itoa(r.sshPort))}, Labels: labels})
		if r.metricsPort != 0 {
			mg = append(mg, targetGroup{Targets: []string{net.JoinHostPort(address, strconv.Itoa(r.metricsPort))}, Labels: labels})
		}
	}
	metrics, _ = json.MarshalIndent(mg, "", "  ")
	ssh, _ = json.MarshalIndent(sg, "", "  ")
	return append(metrics, '\n'), append(ssh, '\n')
}
