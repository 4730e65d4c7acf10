// Package admission is the Redis side of the hand-over from the web to the
// queue. The accept script appends what a submission leaves for the
// workers — a lead's routing, a repeat's opt-in request — to a stream
// (redisstore.AdmissionStream) in the same step as it stores the lead, as
// the move of a lead that asks for a confirmation link to routed or failed
// does its opt-in request; the workers read that stream in one consumer
// group, queue each entry's asynq task, and delete the entry only then.
//
// Why a stream with a consumer group: Redis remembers which reader holds
// which entry (the pending list) until it is acknowledged, so a worker that
// dies between reading and acknowledging loses nothing — another takes its
// entries over once they have been idle for a while (XAUTOCLAIM), with no
// heartbeats or per-worker lists of our own. An entry handled twice (taken
// over from a slow worker, or read again after a failed acknowledgement)
// queues a task whose id already exists, which is harmless.
package admission

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake/redisstore"
)

// Group is the consumer group every worker reads the stream in.
const Group = "drain"

// Entry is one piece of work handed over: Kind is "route" (queue the lead's
// routing) or "optin" (queue the opt-in request for the lead).
type Entry struct {
	ID   string // the stream entry's id
	Kind string
	Lead string
}

// Stream is the admission stream as one reader (consumer) sees it.
type Stream struct {
	rdb      redis.UniversalClient
	consumer string
}

// New returns the stream read as consumer, a name no other live reader
// has (one per process).
func New(rdb redis.UniversalClient, consumer string) *Stream {
	return &Stream{rdb: rdb, consumer: consumer}
}

// Join creates the consumer group, reading from the stream's start, unless
// it exists. Readers call it when they start and after an error, since a
// Redis that lost its data (no persistence) lost the group too.
func (s *Stream) Join(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, redisstore.AdmissionStream, Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	return nil
}

// Read returns up to n entries. With pending set, the ones this reader
// read before and has not finished (after an error, or a restart under
// the same name); else new ones, waiting up to block for the first.
func (s *Stream) Read(ctx context.Context, pending bool, n int, block time.Duration) ([]Entry, error) {
	args := &redis.XReadGroupArgs{Group: Group, Consumer: s.consumer, Streams: []string{redisstore.AdmissionStream, ">"},
		Count: int64(n), Block: block}
	if pending {
		args.Streams[1], args.Block = "0", -1
	}
	streams, err := s.rdb.XReadGroup(ctx, args).Result()
	if errors.Is(err, redis.Nil) { // nothing came within block
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, st := range streams {
		out = appendEntries(out, st.Messages)
	}
	return out, nil
}

// TakeOver claims up to n entries that other readers have held unfinished
// for at least idle — readers that died, most likely — and returns them.
func (s *Stream) TakeOver(ctx context.Context, idle time.Duration, n int) ([]Entry, error) {
	msgs, _, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: redisstore.AdmissionStream, Group: Group,
		Consumer: s.consumer, MinIdle: idle, Start: "0-0", Count: int64(n)}).Result()
	if err != nil {
		return nil, err
	}
	return appendEntries(nil, msgs), nil
}

// Done acknowledges and deletes entries whose work is queued, in one
// transaction: an entry is never left acknowledged but kept.
func (s *Stream) Done(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, redisstore.AdmissionStream, Group, ids...)
		p.XDel(ctx, redisstore.AdmissionStream, ids...)
		return nil
	})
	return err
}

// Forget removes from the group the readers idle for longer than idle and
// holding nothing: each worker process reads under a name of its own, and
// the names of those gone would pile up.
func (s *Stream) Forget(ctx context.Context, idle time.Duration) error {
	readers, err := s.rdb.XInfoConsumers(ctx, redisstore.AdmissionStream, Group).Result()
	if err != nil {
		return err
	}
	for _, r := range readers {
		if r.Pending == 0 && r.Idle >= idle && r.Name != s.consumer {
			if err := s.rdb.XGroupDelConsumer(ctx, redisstore.AdmissionStream, Group, r.Name).Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendEntries reads stream messages as entries; a message of another
// shape (none is written) is returned with an empty Kind, for the reader
// to drop.
func appendEntries(out []Entry, msgs []redis.XMessage) []Entry {
	for _, m := range msgs {
		e := Entry{ID: m.ID}
		for _, kind := range []string{"route", "optin"} {
			if lead, ok := m.Values[kind].(string); ok {
				e.Kind, e.Lead = kind, lead
			}
		}
		out = append(out, e)
	}
	return out
}
