package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/paymtech/leadgate/intake/redisstore/admission"
)

// AdmissionStream is the hand-over from the accept script (admission.Stream).
type AdmissionStream interface {
	Join(ctx context.Context) error
	Read(ctx context.Context, pending bool, n int, block time.Duration) ([]admission.Entry, error)
	TakeOver(ctx context.Context, idle time.Duration, n int) ([]admission.Entry, error)
	Done(ctx context.Context, ids ...string) error
	Forget(ctx context.Context, idle time.Duration) error
}

// The drain's timing. A Drain's zero fields take these.
const (
	drainBatch = 100 // entries read at once
	// drainBlock is how long one read waits for an entry: an entry is
	// taken the moment it arrives, and a stopping drain notices within it.
	drainBlock = time.Second
	// drainTakeOver is how long an entry may sit unfinished with one reader
	// before another takes it over: far longer than queuing a batch takes,
	// so that a live reader is rarely overtaken (and that would be
	// harmless), short enough that a dead worker's leads are not late.
	drainTakeOver = 10 * time.Second
	// drainForget is how long a reader holding nothing may be silent
	// before its name is removed from the group.
	drainForget = time.Hour
	// drainMaxPause caps the pause between tries while Redis is away, so
	// the drain resumes within about a second of Redis returning.
	drainMaxPause = time.Second
)

// Drain moves the admission stream into asynq: for each entry it queues
// the task (lead:route, or the opt-in request) and only then deletes the
// entry, so an entry is never lost — at worst queued twice, which the task
// ids make harmless. Run it in every worker process; they share the work.
type Drain struct {
	Stream AdmissionStream
	Queue  interface {
		EnqueueLead(ctx context.Context, id string) error
		EnqueueOptin(ctx context.Context, id string) error
	}
	Log *slog.Logger
	// Block is how long a read waits for an entry; zero means 1 s.
	Block time.Duration
	// TakeOver is how long an entry may stay unfinished with another
	// reader before this one takes it over; zero means 10 s.
	TakeOver time.Duration
}

// Run drains until ctx ends. It never gives up on an error: it pauses
// (50 ms doubling up to 1 s) and starts again with the entries it holds.
func (d *Drain) Run(ctx context.Context) {
	block, takeOver := d.Block, d.TakeOver
	if block == 0 {
		block = drainBlock
	}
	if takeOver == 0 {
		takeOver = drainTakeOver
	}
	var lastTakeOver time.Time
	pause, failing := time.Duration(0), false
	for ctx.Err() == nil {
		err := d.Stream.Join(ctx)
		// After a start or an error, first what this reader already holds.
		pending := true
		for err == nil && ctx.Err() == nil {
			if time.Since(lastTakeOver) >= takeOver/2 {
				lastTakeOver = time.Now()
				if err = d.takeOver(ctx, takeOver); err != nil {
					break
				}
			}
			var entries []admission.Entry
			if entries, err = d.Stream.Read(ctx, pending, drainBatch, block); err == nil {
				err = d.handle(ctx, entries)
			}
			pending = pending && len(entries) == drainBatch
			if err == nil && failing {
				d.Log.Info("admission drain resumed")
				pause, failing = 0, false
			}
		}
		if ctx.Err() != nil {
			return
		}
		if !failing {
			d.Log.Warn("admission drain stopped by an error; retrying", "err", err)
			failing = true
		}
		pause = min(max(2*pause, 50*time.Millisecond), drainMaxPause)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// takeOver handles the entries other readers left unfinished, and forgets
// readers long gone.
func (d *Drain) takeOver(ctx context.Context, idle time.Duration) error {
	for {
		entries, err := d.Stream.TakeOver(ctx, idle, drainBatch)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			d.Log.Info("admission drain took over entries of a stopped worker", "entries", len(entries))
		}
		if err := d.handle(ctx, entries); err != nil {
			return err
		}
		if len(entries) < drainBatch {
			return d.Stream.Forget(ctx, drainForget)
		}
	}
}

// handle queues the entries' tasks, in order, and deletes those queued. On
// an error it deletes those queued before it and returns the error; the
// rest stay with this reader, to be read again.
func (d *Drain) handle(ctx context.Context, entries []admission.Entry) error {
	// A drain told to stop still finishes the batch it holds: each call is
	// bounded by the Redis client's timeouts.
	ctx = context.WithoutCancel(ctx)
	done := make([]string, 0, len(entries))
	var err error
	for _, e := range entries {
		switch e.Kind {
		case "route":
			err = d.Queue.EnqueueLead(ctx, e.Lead)
		case "optin":
			err = d.Queue.EnqueueOptin(ctx, e.Lead)
		default:
			d.Log.Error("admission entry of an unknown kind dropped", "entry", e.ID)
		}
		if err != nil {
			err = fmt.Errorf("queue %s of lead %s: %w", e.Kind, e.Lead, err)
			break
		}
		done = append(done, e.ID)
	}
	if derr := d.Stream.Done(ctx, done...); derr != nil {
		return derr
	}
	return err
}
