package health

import (
	"errors"
	"testing"
	"time"
)

func TestDetailedReportCarriesTheLastReload(t *testing.T) {
	h := New("test")
	at := clock
	h.now = func() time.Time { return at }
	if r := h.DetailedReport(ControlInfo{}); r.LastReload != nil {
		t.Errorf("before any load: %+v", r.LastReload)
	}
	h.ReloadResult(nil)
	at = clock.Add(time.Minute)
	h.ReloadResult(errors.New("rtunnel.yaml:3: unknown key \"tunels\""))
	r := h.DetailedReport(ControlInfo{}).LastReload
	if r == nil || r.OK || r.Error != `rtunnel.yaml:3: unknown key "tunels"` || !r.At.Equal(at) || !r.LastSuccess.Equal(clock) {
		t.Errorf("after a good load and a refused reload: %+v", r)
	}
	if p := h.PublicReport(); p.LastReload != nil || p.Detailed {
		t.Errorf("the public report shows the reload: %+v", p)
	}
}
