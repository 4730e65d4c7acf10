// Package pace keeps a long job's Redis calls to a share of Redis's time,
// so that intake's requests find Redis free between them (the retention
// purge beside the form).
package pace

import "time"

// minPause is the least a Pacer sleeps: pauses are saved up to it, since
// shorter sleeps overshoot.
const minPause = 2 * time.Millisecond

// Pacer adds up how long the calls took and sleeps what its share leaves
// to others. Sleeps are saved up to minPause, since a sleep of a few
// microseconds takes far longer; so the job works in bursts of about a
// millisecond, each a few short calls with room for other clients between
// them. A Pacer is for one goroutine.
type Pacer struct {
	share float64
	owed  time.Duration // pause not yet taken
	now   func() time.Time
	sleep func(time.Duration)
}

// New returns a Pacer keeping to share of the time, 0 < share ≤ 1; at 1
// it never sleeps.
func New(share float64) *Pacer { return &Pacer{share: share, now: time.Now, sleep: time.Sleep} }

// Start marks the beginning of a call; the returned func its end, which
// sleeps when the pause owed has grown to minPause.
func (p *Pacer) Start() (done func()) {
	t := p.now()
	return func() {
		if p.share >= 1 {
			return
		}
		p.owed += time.Duration(float64(p.now().Sub(t)) * (1 - p.share) / p.share)
		if p.owed >= minPause {
			slept := p.now()
			p.sleep(p.owed)
			// An oversleep is credited, up to one pause: a process that was
			// stopped a while must not then run flat out as long.
			p.owed = max(p.owed-p.now().Sub(slept), -minPause)
		}
	}
}
