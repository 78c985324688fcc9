// Package systemdtest runs the installed rtunnel package under a real systemd
// as PID 1: a Debian 12 container booted with systemd-nspawn from a cached
// debootstrap root (mkroot.sh). Its only content is the test behind
// `make systemd-test`; it imports the standard library and goleak only.
package systemdtest
