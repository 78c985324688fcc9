package fleet

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// attemptCounts is rtunnel_connect_attempts_total summed over the fleet, by
// result: what the clients saw of a phase (timeouts, busy hubs, refusals),
// beside what the hub logged of it.
type attemptCounts map[string]int

var attemptLine = regexp.MustCompile(`^rtunnel_connect_attempts_total\{(?:[^}]*,)?result="([^"]*)"[^}]*\} (\S+)$`)

// parseAttempts sums rtunnel_connect_attempts_total by result from one
// /metrics body.
func parseAttempts(r io.Reader, into attemptCounts) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := attemptLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return fmt.Errorf("%q: %w", sc.Text(), err)
		}
		into[m[1]] += int(v)
	}
	return sc.Err()
}

// scrapeAttempts reads every remote's counters, a few at a time. A remote
// that does not answer is counted in "unscraped".
func scrapeAttempts(ns string, rs []*remote) attemptCounts {
	total := attemptCounts{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan *remote)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				one := attemptCounts{}
				err := scrapeOne(ns, r.metricsPort, one)
				mu.Lock()
				if err != nil {
					total["unscraped"]++
				}
				for k, v := range one {
					total[k] += v
				}
				mu.Unlock()
			}
		}()
	}
	for _, r := range rs {
		work <- r
	}
	close(work)
	wg.Wait()
	return total
}

func scrapeOne(ns string, port int, into attemptCounts) error {
	resp, err := nsHTTP(ns).Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return parseAttempts(resp.Body, into)
}

func (a attemptCounts) minus(before attemptCounts) attemptCounts {
	d := attemptCounts{}
	for k, v := range a {
		if k == "unscraped" {
			d[k] = v
		} else if v-before[k] != 0 {
			d[k] = v - before[k]
		}
	}
	return d
}

func TestParseAttempts(t *testing.T) {
	body := strings.Join([]string{
		`# TYPE rtunnel_connect_attempts_total counter`,
		`rtunnel_connect_attempts_total{result="ok",tunnel="r1"} 1`,
		`rtunnel_connect_attempts_total{result="busy",tunnel="r1"} 3`,
		`rtunnel_connect_attempts_total{result="timeout",tunnel="r1@hub"} 2`,
		`rtunnel_connect_attempts_totalx{result="ok",tunnel="r1"} 9`,
		`rtunnel_reconnects_total{tunnel="r1"} 4`,
	}, "\n")
	got := attemptCounts{"ok": 1}
	if err := parseAttempts(strings.NewReader(body), got); err != nil {
		t.Fatal(err)
	}
	if got["ok"] != 2 || got["busy"] != 3 || got["timeout"] != 2 || len(got) != 3 {
		t.Errorf("got %v, want ok 2 (1 before), busy 3, timeout 2", got)
	}
	if d := got.minus(attemptCounts{"ok": 2, "busy": 1}); d["busy"] != 2 || d["timeout"] != 2 || len(d) != 2 {
		t.Errorf("minus: %v", d)
	}
}
