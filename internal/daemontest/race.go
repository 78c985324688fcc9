//go:build race

package daemontest

const raceEnabled = true

// RaceBuild reports whether Binary builds rtunnel with the race detector,
// whose own memory grows with every goroutine ever started: its RSS is not
// rtunnel's.
const RaceBuild = raceEnabled
