// Package batch runs the calls of one Lua script that wait at the same
// moment as one pipeline: one write and one read for the lot, on both
// sides, instead of one each per call.
//
// Why: under load, a call's round trip cost both sides almost as much CPU
// as the work: the web spent 19 % of its CPU in go-redis, nearly all of it
// the socket write and read of one call, and redis-server a third of its
// time in the kernel. Sharing pipelines took the web's CPU a request from
// 146–171 to 128 µs and redis-server's from 124–141 to 108–111 µs
// (BENCHMARKS.md, intake). Calls that arrive while a pipeline is out share
// the next one, so an idle store sends each call at once, as before, and
// a busy one sends fewer, larger pipelines. Each call is still its own
// script: atomic, and answered on its own.
//
// There are no goroutines of its own: the caller that finds fewer than
// Senders pipelines out sends the queue itself; one that finds the senders
// busy waits, and a sender that finishes hands the queue that built up
// meanwhile to its oldest caller, who sends it. A caller that stops
// waiting before its call is sent (its context ended, or MaxWait passed)
// takes the call back: it never runs, and the error says so (ErrNotSent).
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Senders is how many pipelines may be out at once: two, so that one is
// built and written while Redis runs the other.
const Senders = 2

// maxCalls bounds a pipeline: a long one delays its first call's answer by
// the whole pipeline's run.
const maxCalls = 64

// Script runs one script's calls in shared pipelines.
type Script struct {
	rdb    redis.UniversalClient
	script *redis.Script

	mu      sync.Mutex
	queue   []*call // waiting, oldest first
	senders int     // pipelines out
}

// call is one Run: cmd gets its answer, and done is closed then. turn is
// closed when its caller is to send batch (the queue handed to it). taken
// says it left the queue in a batch; gone, that its caller stopped waiting
// before that.
type call struct {
	cmd   *redis.Cmd
	keys  []string
	args  []any
	done  chan struct{}
	turn  chan struct{}
	batch []*call // under mu
	taken bool    // under mu
	gone  bool    // under mu
}

// New returns script's calls on rdb, batched.
func New(rdb redis.UniversalClient, script *redis.Script) *Script {
	return &Script{rdb: rdb, script: script}
}

// ErrNotSent is in the chain of the error of a call that was never sent:
// its caller stopped waiting (its context ended, or MaxWait passed) while
// the call was still queued. Such a call did not run and never will.
var ErrNotSent = errors.New("not sent to Redis")

// MaxWait is how long a call may wait in the queue before its caller gives
// up: the client's default read timeout, which a call sent on its own would
// have hit too. It bounds a request's wait while Redis is away; without it
// the queue would grow with every request an outage holds.
const MaxWait = 3 * time.Second

// Run runs the script with keys and args, like redis.Script.Run, and
// returns its answer. When ctx ends or MaxWait passes before the call is
// sent, the error holds ErrNotSent (it never runs); when ctx ends while it
// is out, ctx's error (it may have run: its outcome is unknown).
func (s *Script) Run(ctx context.Context, keys []string, args ...any) *redis.Cmd {
	c := &call{keys: keys, args: args, done: make(chan struct{}), turn: make(chan struct{})}
	s.mu.Lock()
	s.queue = append(s.queue, c)
	if s.senders < Senders {
		s.senders++
		s.hand(s.take(), c)
	}
	s.mu.Unlock()
	wait := time.NewTimer(MaxWait)
	defer wait.Stop()
	var cause error
	select {
	case <-c.turn:
		s.send(ctx, c.batch)
		return c.cmd
	case <-c.done:
		return c.cmd
	case <-ctx.Done():
		cause = ctx.Err()
	case <-wait.C:
		cause = fmt.Errorf("queued for %s", MaxWait)
	}
	s.mu.Lock()
	handed, taken := c.batch != nil, c.taken
	c.gone = !taken // the next take drops it
	s.mu.Unlock()
	switch {
	case handed: // others wait for it
		s.send(ctx, c.batch)
		return c.cmd
	case !taken:
		return failed(ctx, fmt.Errorf("%w: %w", ErrNotSent, cause))
	case ctx.Err() != nil: // out with another sender's pipeline
		return failed(ctx, cause)
	}
	<-c.done // out, and bounded by the client's own timeouts
	return c.cmd
}

// failed is the answer of a call that got none from Redis: err.
func failed(ctx context.Context, err error) *redis.Cmd {
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(err)
	return cmd
}

// hand gives batch to its caller c to send; the caller holds mu.
func (s *Script) hand(batch []*call, c *call) {
	c.batch = batch
	close(c.turn)
}

// take removes up to maxCalls calls from the front of the queue, dropping
// those whose callers gave up (never sent, they never run); the caller
// holds mu.
func (s *Script) take() []*call {
	var batch []*call
	for len(s.queue) > 0 && len(batch) < maxCalls {
		c := s.queue[0]
		s.queue[0] = nil // the backing array outlives the call otherwise
		s.queue = s.queue[1:]
		if !c.gone {
			c.taken = true
			batch = append(batch, c)
		}
	}
	return batch
}

// send runs batch in one pipeline, then hands the queue that built up
// meanwhile to its oldest caller, or counts itself out.
func (s *Script) send(ctx context.Context, batch []*call) {
	s.pipeline(context.WithoutCancel(ctx), batch) // the batch is others' calls too
	for _, c := range batch {
		close(c.done)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if next := s.take(); len(next) > 0 {
		s.hand(next, next[0])
		return
	}
	s.senders--
}

// pipeline runs batch's calls with EVALSHA, and those Redis answers
// NOSCRIPT (a restarted or flushed server) again after loading the script:
// a call refused for that did not run.
func (s *Script) pipeline(ctx context.Context, batch []*call) {
	for try := 0; len(batch) > 0; try++ {
		p := s.rdb.Pipeline()
		for _, c := range batch {
			c.cmd = s.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		p.Exec(ctx) // each call's error is in its cmd
		var again []*call
		for _, c := range batch {
			if redis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
				again = append(again, c)
			}
		}
		if len(again) == 0 || try == 1 {
			return
		}
		if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
			for _, c := range again {
				c.cmd.SetErr(errors.Join(c.cmd.Err(), err))
			}
			return
		}
		batch = again
	}
}
