package fleet

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// clientErrors counts, over the clients' logs from the given offsets, the
// errors they logged for retries whose result is not busy or dial (those
// are counted by the hub and by client_attempts): the text says which step
// timed out or failed, with numbers replaced by N.
func clientErrors(cs []*client, from []int64) map[string]int {
	counts := map[string]int{}
	for i, c := range cs {
		f, err := os.Open(c.log)
		if err != nil {
			continue
		}
		if i < len(from) {
			_, _ = f.Seek(from[i], io.SeekStart)
		}
		b, _ := io.ReadAll(io.LimitReader(f, 16<<20))
		f.Close()
		countRetryErrors(string(b), counts)
	}
	if len(counts) == 0 {
		return nil
	}
	return counts
}

func countRetryErrors(log string, counts map[string]int) {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `"retry_in"`) {
			continue
		}
		var e struct {
			Result string `json:"result"`
			Err    string `json:"err"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Result == "busy" || e.Result == "dial" || e.Result == "" {
			continue
		}
		counts[e.Result+": "+normalizeClientErr(e.Err)]++
	}
}

var (
	ipAndPort = regexp.MustCompile(`[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(:[0-9]+)?`)
	fleetName = regexp.MustCompile(`rtfleet[0-9a-z]+`)
)

// normalizeClientErr keeps an error's durations (which timeout) and drops
// addresses and user names.
func normalizeClientErr(s string) string {
	return fleetName.ReplaceAllString(ipAndPort.ReplaceAllString(s, "ADDR"), "USER")
}

// logSizes is where each client's log ends now.
func logSizes(cs []*client) []int64 {
	sizes := make([]int64, len(cs))
	for i, c := range cs {
		if st, err := os.Stat(c.log); err == nil {
			sizes[i] = st.Size()
		}
	}
	return sizes
}

func TestCountRetryErrors(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"WARN","msg":"tunnel down; will retry","result":"dial","err":"cannot connect to fleet@10.0.0.1:22: connection refused","retry_in":"1s"}`,
		`{"level":"INFO","msg":"tunnel still down, for another reason now; will retry","result":"timeout","err":"SSH handshake with rtfleet1a2@10.0.0.1:22 did not finish within 15s","retry_in":"16.2s"}`,
		`{"level":"INFO","msg":"tunnel still down, for another reason now; will retry","result":"timeout","err":"SSH handshake with rtfleet3b@10.0.0.2:22 did not finish within 15s","retry_in":"3s"}`,
		`{"level":"INFO","msg":"hub busy (MaxStartups?)","result":"busy","err":"x","retry_in":"2s"}`,
		`{"level":"INFO","msg":"forward up","forward":"localhost:2220"}`,
	}, "\n")
	counts := map[string]int{}
	countRetryErrors(log, counts)
	want := "timeout: SSH handshake with USER@ADDR did not finish within 15s"
	if counts[want] != 2 || len(counts) != 1 {
		t.Errorf("counts %v, want %q: 2", counts, want)
	}
}
