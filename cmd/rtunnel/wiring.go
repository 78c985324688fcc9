package main

import (
	"fmt"
	"log/slog"

	"github.com/rtunnel/rtunnel/config"
	"github.com/rtunnel/rtunnel/reconnect"
	"github.com/rtunnel/rtunnel/tunnel"
)

// tunnelConfig maps one config.Tunnel to what package tunnel needs.
func tunnelConfig(c *config.Config, t config.Tunnel, log *slog.Logger, obs tunnel.Observer) tunnel.Config {
	endpoint := func(e config.Endpoint) tunnel.Endpoint {
		return tunnel.Endpoint{User: e.User, Host: e.Host, Port: e.Port,
			Identities: e.Identities, Certificate: e.Certificate, IdentityAgent: e.IdentityAgent,
			KnownHosts: e.KnownHosts, HostKeyAlias: e.HostKeyAlias, AcceptNew: e.AcceptNew, HashKnownHosts: e.HashKnownHosts,
			ConnectTimeout: e.ConnectTimeout}
	}
	tc := tunnel.Config{
		Name:                 t.Name,
		Server:               endpoint(t.Server),
		KeepaliveInterval:    t.Keepalive.Interval,
		KeepaliveCountMax:    t.Keepalive.CountMax,
		ExitOnForwardFailure: t.ExitOnForwardFailure,
		ForwardRetry:         t.ForwardRetry,
		ForwardRetryFor:      t.ForwardRetryFor,
		ForwardRetryMax:      t.Backoff.Max,
		MaxConnections:       t.MaxConnections,
		ShutdownGrace:        c.ShutdownGrace,
		DisableStalePoke:     !t.StaleSessionPoke,
		Log:                  log,
		Observer:             obs,
	}
	// loadAndCheck reports the errors; a list with one is left at the default.
	algos, _ := tunnelAlgorithms(c, t)
	tc.Ciphers, tc.KeyExchanges, tc.MACs, tc.HostKeyAlgorithms = algos[tunnel.KindCiphers], algos[tunnel.KindKexAlgorithms],
		algos[tunnel.KindMACs], algos[tunnel.KindHostKeyAlgorithms]
	for _, j := range t.Jump {
		tc.Jump = append(tc.Jump, endpoint(j))
	}
	for _, f := range t.Forwards {
		tc.Forwards = append(tc.Forwards, tunnel.Forward{RemoteHost: f.Remote.Host, RemotePort: f.Remote.Port,
			RemotePath: f.RemotePath, Local: f.LocalString()})
	}
	for _, f := range t.LocalForwards {
		tc.LocalForwards = append(tc.LocalForwards, tunnel.LocalForward{Listen: f.ListenString(), Connect: f.ConnectString()})
	}
	return tc
}

// forwardLabels are the labels of every forward of tc, remote then local,
// as the session reports them to health.
func forwardLabels(tc tunnel.Config) []string {
	labels := make([]string, 0, len(tc.Forwards)+len(tc.LocalForwards))
	for _, f := range tc.Forwards {
		labels = append(labels, f.String())
	}
	for _, f := range tc.LocalForwards {
		labels = append(labels, f.String())
	}
	return labels
}

// tunnelAlgorithms resolves the tunnel's algorithm specs against
// x/crypto's lists; each problem names where the spec was written.
func tunnelAlgorithms(c *config.Config, t config.Tunnel) (map[tunnel.AlgorithmKind][]string, []error) {
	a := map[tunnel.AlgorithmKind][]string{}
	var errs []error
	for _, spec := range t.Algorithms {
		list, err := tunnel.ResolveAlgorithms(tunnel.AlgorithmKind(spec.Key), spec.Spec)
		if err != nil {
			where := fmt.Sprintf("%s:%d: tunnels[%s]", c.Path, spec.Line, t.Name)
			if spec.From != "" {
				where += " (from " + spec.From + ")"
			}
			errs = append(errs, fmt.Errorf("%s.%w", where, err))
			continue
		}
		a[tunnel.AlgorithmKind(spec.Key)] = list
	}
	return a, errs
}

func reconnectPolicy(t config.Tunnel) reconnect.Policy {
	return reconnect.Policy{
		Initial:      t.Backoff.Initial,
		Max:          t.Backoff.Max,
		Multiplier:   t.Backoff.Multiplier,
		Jitter:       t.Backoff.Jitter,
		ResetAfter:   t.Backoff.ResetAfter,
		FastRetry:    t.ForwardRetry,
		FastRetryFor: t.ForwardRetryFor,
	}
}
