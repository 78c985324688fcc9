// Package fleet measures many remotes against one stock OpenSSH hub: `make
// fleet` releases N rtunnel (or `autossh -M 0`) processes at once against a
// real sshd with its default MaxStartups, inside a network namespace the
// test creates, and measures cold start, a hub reboot, what the hub paid
// (connections forked, MaxStartups drops, sessions, wasted pre-auth
// children, SYNs while it was down) and the idle cost of every client.
// It also holds the hub-side fleet view test: Prometheus and
// blackbox_exporter scraping every remote through its tunnel.
//
// Everything lives in its tests: TestFleet is `make fleet` (RTUNNEL_FLEET=1,
// -n and -client flags), TestFleetSmoke runs N=20 in `make test` so the
// harness cannot rot. See docs/FLEET.md. It imports the standard library,
// golang.org/x/crypto/ssh (to write keys), goleak and the repo's test
// helpers only.
package fleet
