package bench

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Every workload is bounded: each connection has a deadline, every poll a
// deadline, and a failure is counted or returned, never waited out.

const gib = 1 << 30

type direction string

const (
	hubToRemote direction = "h2r" // into the forwarded port, out to the target
	remoteToHub direction = "r2h" // from the target back out of the forwarded port
)

// throughput moves n bytes one way through forward 0 and returns MiB/s and
// the client's CPU seconds per GiB over the transfer.
func throughput(r *running, pat *pattern, n int64, verify string, dir direction) (mibps, cpuPerGiB float64, err error) {
	pat.want(verify, n) // digest computed before the clock starts
	c, err := dialFwd(r.fwdAddr(0), 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	// At least 10 MB/s, or it is a failure.
	_ = c.SetDeadline(time.Now().Add(30*time.Second + time.Duration(n/10e6)*time.Second))
	cpu0, procs := treeCPU(r.pid)
	if procs == 0 {
		return 0, 0, fmt.Errorf("client pid %d not found in /proc", r.pid)
	}
	t0 := time.Now()
	if dir == hubToRemote {
		err = sendSink(c, pat, n, verify)
	} else {
		err = readSource(c, pat, n, verify)
	}
	el := time.Since(t0)
	cpu1, _ := treeCPU(r.pid)
	if err != nil {
		return 0, 0, err
	}
	return float64(n) / (1 << 20) / el.Seconds(), (cpu1 - cpu0) / (float64(n) / gib), nil
}

// stallAt is the cycle time counted as a stall: a delayed ACK (40 ms on
// Linux) meeting Nagle shows up as a cycle of 40 ms or more.
const stallAt = 30 * time.Millisecond

type latencyResult struct {
	p50, p99 float64 // milliseconds
	stalls   int
}

// latency runs connect-send-receive-close cycles of a 32-byte echo through
// forward 0, back to back (gap 0) or with an idle gap between cycles.
func latency(r *running, cycles int, gap time.Duration) (latencyResult, error) {
	msg := []byte("0123456789abcdef0123456789abcdef")
	back := make([]byte, len(msg))
	ds := make([]time.Duration, 0, cycles)
	for i := range cycles {
		t0 := time.Now()
		c, err := dialFwd(r.fwdAddr(0), 5*time.Second)
		if err != nil {
			return latencyResult{}, fmt.Errorf("cycle %d: %w", i, err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		err = echo(c, msg, back)
		c.Close()
		if err != nil {
			return latencyResult{}, fmt.Errorf("cycle %d: %w", i, err)
		}
		ds = append(ds, time.Since(t0))
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	slices.Sort(ds)
	var res latencyResult
	for _, d := range ds {
		if d >= stallAt {
			res.stalls++
		}
	}
	res.p50 = ms(percentile(ds, 0.50))
	res.p99 = ms(percentile(ds, 0.99))
	return res, nil
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type concResult struct {
	wall     float64 // seconds until every connection finished its echo
	failures int
	// lost counts failed connections that had reached the remote side's
	// target: the client accepted the forwarded connection and dialed the
	// target, and the exchange still failed. The other failures never got
	// past the hub (its listen queue or its own refusals) or were refused by
	// the client before it dialed the target.
	lost     int
	firstErr error
}

// concurrent opens n connections at once through forward 0, each echoing
// size bytes. If during is set, all connections stay open after their echo
// until during has run.
func concurrent(r *running, tg *target, pat *pattern, n, size int, during func()) concResult {
	msg := pat.buf[:size]
	accepted0 := tg.accepted.Load()
	start := make(chan struct{})
	release := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := dialFwd(r.fwdAddr(0), 30*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			err = echo(c, msg, make([]byte, size))
			errs <- err
			if err == nil && during != nil {
				<-release
			}
		}()
	}
	t0 := time.Now()
	close(start)
	var res concResult
	for range n {
		if err := <-errs; err != nil {
			res.failures++
			if res.firstErr == nil {
				res.firstErr = err
			}
		}
	}
	res.wall = time.Since(t0).Seconds()
	// Every connection has finished its echo or failed, so every one that
	// got through has been accepted by now.
	res.lost = int(tg.accepted.Load()-accepted0) - (n - res.failures)
	if during != nil {
		during()
	}
	close(release)
	wg.Wait()
	return res
}

// recovery kills the hub's sshd and every session, leaves it down for down,
// restarts it, and returns the seconds from sshd listening again to an echo
// through forward 0 (polled every 20 ms, at most 2 minutes).
func recovery(t *testing.T, r *running, down time.Duration) (float64, error) {
	t.Helper()
	r.hub.srv.Kill()
	time.Sleep(down)
	r.hub.srv.Restart(t)
	t0 := time.Now()
	if err := waitEcho(r.fwdAddr(0), t0.Add(2*time.Minute)); err != nil {
		return 0, fmt.Errorf("no traffic 2 minutes after the hub came back: %w", err)
	}
	return time.Since(t0).Seconds(), nil
}
