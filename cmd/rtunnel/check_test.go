package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rtunnel/rtunnel/config"
)

// TestCapProblems: check and up list at most config.MaxErrors problems and
// count the rest, and the count in their exit message includes the rest.
func TestCapProblems(t *testing.T) {
	var many []error
	for i := range 250 {
		many = append(many, fmt.Errorf("/etc/rtunnel/rtunnel.yaml:%d: tunnel t%d: key missing", i+1, i))
	}
	got := capProblems("/etc/rtunnel/rtunnel.yaml", many)
	if len(got) != config.MaxErrors+1 {
		t.Fatalf("%d problems listed, want %d", len(got), config.MaxErrors+1)
	}
	if last := got[len(got)-1].Error(); last != "/etc/rtunnel/rtunnel.yaml: ... and 230 more problems" {
		t.Errorf("last line %q", last)
	}
	if n := problemCount(got); n != 250 {
		t.Errorf("problemCount = %d, want 250", n)
	}
	few := many[:3]
	if got := capProblems("f", few); len(got) != 3 || problemCount(got) != 3 {
		t.Errorf("3 problems: listed %d, counted %d", len(got), problemCount(got))
	}

	// config.Load's own cut is counted the same way.
	_, err := config.Parse("f.yaml", []byte(strings.Repeat("x: 1\n", 100)))
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v", err)
	}
	flat := make([]error, len(errs))
	for i, e := range errs {
		flat[i] = e
	}
	if n := problemCount(flat); n != errs.Count() || n != 101 { // 100 unknown keys and no tunnels
		t.Errorf("problemCount = %d, Errors.Count = %d, want 101", n, errs.Count())
	}
}
