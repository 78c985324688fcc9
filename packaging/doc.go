// Package packaging holds the systemd units, sysusers/tmpfiles entries, the
// example config and the nfpm recipe; its only Go code is the test that
// builds the .deb and installs it for real.
package packaging
