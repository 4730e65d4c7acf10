package redisstore

import "time"

// minPause is the least a pacer sleeps: pauses are saved up to it, since
// shorter sleeps overshoot.
const minPause = 2 * time.Millisecond

// pacer keeps the purge's Redis calls to a share of its time: it adds up
// how long they took and sleeps what that share leaves to others. Sleeps
// are saved up to minPause, since a sleep of a few microseconds takes far
// longer; so the purge works in bursts of about a millisecond, each a few
// short scripts with room for other clients between them.
type pacer struct {
	share float64
	owed  time.Duration // pause not yet taken
}

// start marks the beginning of a Redis call; the returned func its end.
func (p *pacer) start() (done func()) {
	t := time.Now()
	return func() {
		if p.share >= 1 {
			return
		}
		p.owed += time.Duration(float64(time.Since(t)) * (1 - p.share) / p.share)
		if p.owed >= minPause {
			slept := time.Now()
			time.Sleep(p.owed)
			// An oversleep is credited, up to one pause: a process that was
			// stopped a while must not then run flat out as long.
			p.owed = max(p.owed-time.Since(slept), -minPause)
		}
	}
}
