package pace

import (
	"testing"
	"time"
)

// At half the time, a call of 5 ms is followed by a pause of at least as
// long; a short call's pause is saved up, not slept; at the whole time
// nothing is slept or owed.
func TestPacerSleepsWhatItsShareLeaves(t *testing.T) {
	p := New(0.5)
	done := p.Start()
	time.Sleep(5 * time.Millisecond)
	end := time.Now()
	done()
	if slept := time.Since(end); slept < 5*time.Millisecond {
		t.Errorf("slept %v after a call of 5 ms at half the time, want at least 5 ms", slept)
	}
	if p.owed > 0 {
		t.Errorf("owed %v after the pause", p.owed)
	}
	p = New(0.5)
	p.Start()()
	if p.owed < 0 || p.owed >= minPause {
		t.Errorf("owed %v after a short call, want a pause saved up below %v", p.owed, minPause)
	}
	p = New(1)
	done = p.Start()
	time.Sleep(3 * time.Millisecond)
	done()
	if p.owed != 0 {
		t.Errorf("owed %v at the whole time, want nothing", p.owed)
	}
}
