// Package deploy holds the hub-side kit (sshd drop-in, HUB.md), Prometheus
// alert rules and a Grafana dashboard; its only Go code is the test that
// runs check.sh, so `go test ./...` (and CI) verifies them with the real tools.
package deploy
