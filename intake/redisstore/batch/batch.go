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
// meanwhile to its oldest caller, who sends it. A call, once queued, is
// sent: its context ends the wait for the answer, not the call.
package batch

import (
	"context"
	"errors"
	"strings"
	"sync"

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
// closed when its caller is to send batch (the queue handed to it); gone,
// when its caller stopped waiting before that.
type call struct {
	cmd   *redis.Cmd
	keys  []string
	args  []any
	done  chan struct{}
	turn  chan struct{}
	batch []*call // under mu
	gone  bool    // under mu
}

// New returns script's calls on rdb, batched.
func New(rdb redis.UniversalClient, script *redis.Script) *Script {
	return &Script{rdb: rdb, script: script}
}

// Run runs the script with keys and args, like redis.Script.Run, and
// returns its answer; when ctx ends first, ctx's error (the call may run
// all the same: its outcome is unknown).
func (s *Script) Run(ctx context.Context, keys []string, args ...any) *redis.Cmd {
	c := &call{keys: keys, args: args, done: make(chan struct{}), turn: make(chan struct{})}
	s.mu.Lock()
	s.queue = append(s.queue, c)
	if s.senders < Senders {
		s.senders++
		s.hand(s.take(), c)
	}
	s.mu.Unlock()
	select {
	case <-c.turn:
		s.send(ctx, c.batch)
	case <-c.done:
	case <-ctx.Done():
		s.mu.Lock()
		handed := c.batch != nil
		c.gone = !handed // no sender hands it the queue now
		s.mu.Unlock()
		if !handed {
			cmd := redis.NewCmd(ctx)
			cmd.SetErr(ctx.Err())
			return cmd
		}
		s.send(ctx, c.batch) // others wait for it
	}
	return c.cmd
}

// hand gives batch to its caller c to send; the caller holds mu.
func (s *Script) hand(batch []*call, c *call) {
	c.batch = batch
	close(c.turn)
}

// take removes up to maxCalls calls from the front of the queue; the
// caller holds mu.
func (s *Script) take() []*call {
	n := min(len(s.queue), maxCalls)
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	return batch
}

// send runs batch in one pipeline, then hands the queue that built up
// meanwhile to its oldest caller still waiting, or counts itself out.
func (s *Script) send(ctx context.Context, batch []*call) {
	ctx = context.WithoutCancel(ctx) // the batch is others' calls too
	for {
		s.pipeline(ctx, batch)
		for _, c := range batch {
			close(c.done)
		}
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.senders--
			s.mu.Unlock()
			return
		}
		batch = s.take()
		for _, c := range batch {
			if !c.gone {
				s.hand(batch, c)
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock() // every caller in it gave up waiting: send it here
	}
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
			if err := c.cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
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
