package health

import (
	"errors"
	"testing"
	"time"
)

// The last config load's outcome is exported as Prometheus and
// blackbox_exporter do, and kept with its error for /status.
func TestReloadResultMetricsAndStatus(t *testing.T) {
	h, srv := newTestHealth(t)
	if r := h.LastReload(); !r.At.IsZero() || r.OK {
		t.Errorf("before any load: %+v", r)
	}
	start := clock
	h.ReloadResult(nil) // the load at start
	s := scrape(t, srv)
	assertValue(t, s, 1, "rtunnel_config_last_reload_successful")
	assertValue(t, s, float64(start.Unix()), "rtunnel_config_last_reload_success_timestamp_seconds")

	refusedAt := clock.Add(time.Minute)
	h.now = func() time.Time { return refusedAt }
	h.ReloadResult(errors.New(`/etc/rtunnel/rtunnel.yaml:3: unknown key "bogus"`))
	s = scrape(t, srv)
	assertValue(t, s, 0, "rtunnel_config_last_reload_successful")
	assertValue(t, s, float64(start.Unix()), "rtunnel_config_last_reload_success_timestamp_seconds")
	r := h.LastReload()
	if r.OK || !r.At.Equal(refusedAt) || !r.LastSuccess.Equal(start) || r.Error != `/etc/rtunnel/rtunnel.yaml:3: unknown key "bogus"` {
		t.Errorf("after a refused reload: %+v", r)
	}

	goodAt := clock.Add(2 * time.Minute)
	h.now = func() time.Time { return goodAt }
	h.ReloadResult(nil)
	s = scrape(t, srv)
	assertValue(t, s, 1, "rtunnel_config_last_reload_successful")
	assertValue(t, s, float64(goodAt.Unix()), "rtunnel_config_last_reload_success_timestamp_seconds")
	if r := h.LastReload(); !r.OK || r.Error != "" || !r.LastSuccess.Equal(goodAt) {
		t.Errorf("after a good reload: %+v", r)
	}
}
