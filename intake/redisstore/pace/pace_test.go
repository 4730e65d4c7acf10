package pace

import (
	"slices"
	"testing"
	"time"
)

// fakeClock is the time a Pacer reads: it moves when the test says a call
// took a while, and when the Pacer sleeps (by the sleep plus over, an
// oversleep).
type fakeClock struct {
	t     time.Time
	over  time.Duration
	slept []time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) sleep(d time.Duration) {
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d + c.over)
}

// newFake is a Pacer keeping to share on a fake clock.
func newFake(share float64) (*Pacer, *fakeClock) {
	c := &fakeClock{t: time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)}
	p := New(share)
	p.now, p.sleep = c.now, c.sleep
	return p, c
}

// call is one paced call that takes d.
func call(p *Pacer, c *fakeClock, d time.Duration) {
	done := p.Start()
	c.t = c.t.Add(d)
	done()
}

// At half the time, a call of 5 ms is followed by a pause as long; a short
// call's pause is saved up, not slept, until it reaches minPause; an
// oversleep is credited, up to one pause; at the whole time nothing is
// slept or owed.
func TestPacerSleepsWhatItsShareLeaves(t *testing.T) {
	p, c := newFake(0.5)
	call(p, c, 5*time.Millisecond)
	if want := []time.Duration{5 * time.Millisecond}; !slices.Equal(c.slept, want) || p.owed != 0 {
		t.Errorf("slept %v, owed %v after a call of 5 ms at half the time, want %v and nothing", c.slept, p.owed, want)
	}

	p, c = newFake(0.5)
	call(p, c, minPause/4)
	if len(c.slept) != 0 || p.owed != minPause/4 {
		t.Errorf("slept %v, owed %v after a short call, want no sleep and %v saved up", c.slept, p.owed, minPause/4)
	}
	for range 3 {
		call(p, c, minPause/4)
	}
	if want := []time.Duration{minPause}; !slices.Equal(c.slept, want) || p.owed != 0 {
		t.Errorf("slept %v, owed %v after four short calls, want %v and nothing", c.slept, p.owed, want)
	}

	p, c = newFake(0.5)
	c.over = time.Second // the process was stopped while it slept
	call(p, c, 5*time.Millisecond)
	if p.owed != -minPause {
		t.Errorf("owed %v after oversleeping a second, want %v: the credit is one pause at most", p.owed, -minPause)
	}

	p, c = newFake(1)
	call(p, c, 3*time.Millisecond)
	if len(c.slept) != 0 || p.owed != 0 {
		t.Errorf("slept %v, owed %v at the whole time, want nothing", c.slept, p.owed)
	}
}
