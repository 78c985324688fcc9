// Package tunnel runs one reverse-tunnel SSH session: it dials the server
// (through ProxyJump hops if any), verifies host keys against known_hosts,
// authenticates with a private key, asks for each remote forward (a port, a
// port the server picks, or a Unix socket), listens for each local forward
// (ssh -L), pipes every forwarded connection to its target and watches the
// link with keepalives.
//
// It imports only golang.org/x/crypto/ssh (with knownhosts),
// golang.org/x/sys/unix (socket options) and the standard library. It knows
// nothing of config files, metrics or systemd: callers pass a Config and
// receive events through the Observer interface. Reconnecting is the
// caller's job (package reconnect); Session returns when the session ends and
// its error says whether retrying can help (Permanent).
package tunnel
