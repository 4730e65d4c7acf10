package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestCollectLessOftenYieldsToGOGC: without GOGC leadgate collects at
// gcPercent; an operator's GOGC is left as the runtime read it.
func TestCollectLessOftenYieldsToGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "100")
	collectLessOften()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC=100 the target became %d", got)
	}
	os.Unsetenv("GOGC") // t.Setenv puts it back as it was
	collectLessOften()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("without GOGC the target is %d, want %d", got, gcPercent)
	}
}
