package jobs

import "time"

// AnsweredFresh is how recent an answer spares Await its ping.
const AnsweredFresh = answeredFresh

// SetAnswerClock makes r's Hook and Await read the time since an arbitrary
// origin from clock instead of the monotonic clock. Call it before Hook is
// installed.
func (r *Recovery) SetAnswerClock(clock func() time.Duration) { r.seen.clock = clock }
