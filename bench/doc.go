// Package bench compares rtunnel with `ssh -N -R` and `autossh -M 0` on
// loopback against a real OpenSSH sshd hub: throughput and client CPU per
// GiB for two ciphers, connection setup latency, many concurrent
// connections, memory, and recovery after a hub restart.
//
// Everything lives in its tests: `make bench` runs TestBench (full sizes,
// RTUNNEL_BENCH=1), and TestBenchSmoke runs the same code with tiny sizes in
// `make test` so the bench cannot rot. See docs/PERFORMANCE.md. It imports
// the standard library, goleak and the repo's test helpers only.
package bench
