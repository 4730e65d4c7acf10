package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
)

// sealedField is one place where a sealed value lives, for key rotation:
// which index lists the records, the record's key, where in it the value is,
// and the context (AAD) it is sealed to. Every sealed field of the store is
// one line of sealedFields; a new one must be added there, or rotation
// leaves it under the old key.
type sealedField struct {
	name  string                     // for the stats: "lead", "contact" …
	index string                     // zset whose members are the records' ids
	key   func(member string) string // the record's Redis key
	field string                     // hash field holding the value; "" for a list of "<prefix> <sealed>" entries
	aad   func(member string) string // the context the value is sealed to
}

func self(member string) string { return member }

// sealedFields is every sealed value the store keeps.
var sealedFields = []sealedField{
	{name: "lead", index: keyAll, key: leadKey, field: sealedRecord, aad: self},
	{name: "contact", index: keyPeople, key: personKey, field: "contact", aad: self},
	{name: "consent", index: keyPeople, key: func(p string) string { return personKey(p) + keyConsents }, aad: self},
	{name: "campaign_test_to", index: keyCampaigns, key: campaignKey, field: "test_to", aad: self},
}

// RekeyCount counts what a rotation found in one sealed field.
type RekeyCount struct {
	Field      string // the sealed field's name ("lead", "contact", "consent", "campaign_test_to")
	Seen       int    // sealed values looked at (a record the scan meets twice, as SCAN may, counts twice)
	Rekeyed    int    // re-sealed under the current key
	Changed    int    // changed or removed by live traffic between read and write: left as they were (already current, or gone)
	Unreadable int    // could not be opened: sealed under a key that is not configured, or damaged
}

// RekeyStats is the progress of a rotation: counts only, never values.
type RekeyStats struct {
	Fields []RekeyCount // in the order of the sealed-field table
}

// Total adds up every field's counts.
func (st RekeyStats) Total() RekeyCount {
	t := RekeyCount{Field: "total"}
	for _, c := range st.Fields {
		t.Seen += c.Seen
		t.Rekeyed += c.Rekeyed
		t.Changed += c.Changed
		t.Unreadable += c.Unreadable
	}
	return t
}

func (st RekeyStats) clone() RekeyStats {
	return RekeyStats{Fields: append([]RekeyCount(nil), st.Fields...)}
}

// rekeyScript replaces one sealed value only if it is still the one read:
// a value live traffic changed meanwhile (a new submission, a rectification,
// an erasure) is newer, and sealed under the current key already.
// KEYS[1] the record; ARGV: 'h' with a field name, or 'l' with a list index;
// the old value; the new value.
var rekeyScript = script("rekey.lua")

// ErrUnreadable is returned by Rekey when some sealed values could not be
// opened with any configured key; the counts say how many.
var ErrUnreadable = errors.New("some sealed values could not be opened with any configured data key (is LEADGATE_OLD_DATA_KEYS missing one?)")

// Rekey re-encrypts every sealed value that is not under the current data
// key, batch records at a time (a SCAN of each index, one pipeline of reads
// and one of writes per batch: Redis is never blocked). Each write is a
// compare-and-set, so it is safe alongside live traffic and safe to run
// again; a second run finds nothing to do (a consent entry that only moved
// in its list meanwhile is counted Changed and picked up by the next run).
// progress, when not nil, gets the
// counts after every batch. Values that cannot be opened are counted and
// left alone; Rekey then returns ErrUnreadable after finishing the rest.
func (s *Store) Rekey(ctx context.Context, batch int, progress func(RekeyStats)) (RekeyStats, error) {
	if batch <= 0 {
		batch = 500
	}
	st := RekeyStats{Fields: make([]RekeyCount, len(sealedFields))}
	for i, f := range sealedFields {
		st.Fields[i].Field = f.name
		var cursor uint64
		for {
			pairs, next, err := s.rdb.ZScan(ctx, f.index, cursor, "", int64(batch)).Result()
			if err != nil {
				return st, intake.Unavailable("rekey: scan "+f.index, err)
			}
			members := make([]string, 0, len(pairs)/2)
			for j := 0; j < len(pairs); j += 2 {
				members = append(members, pairs[j])
			}
			// ZSCAN of a small zset answers all at once, whatever the count:
			// cut it into batches anyway.
			for len(members) > 0 {
				n := min(batch, len(members))
				if err := s.rekeyBatch(ctx, f, members[:n], &st.Fields[i]); err != nil {
					return st, err
				}
				members = members[n:]
				if progress != nil {
					progress(st.clone())
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	if st.Total().Unreadable > 0 {
		return st, ErrUnreadable
	}
	return st, nil
}

// rekeyWrite is one compare-and-set of rekeyScript.
type rekeyWrite struct {
	key, where string // the record; its field, or the list index
	old, new   string
}

// rekeyBatch re-seals the values of one field in a batch of records.
func (s *Store) rekeyBatch(ctx context.Context, f sealedField, members []string, c *RekeyCount) error {
	reads := make([]redis.Cmder, len(members))
	// The pipeline's own error is that of its first failed command, and a
	// record gone since the scan (redis.Nil) is no failure: each command's
	// error is checked instead.
	s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, m := range members {
			if f.field != "" {
				reads[j] = p.HGet(ctx, f.key(m), f.field)
			} else {
				reads[j] = p.LRange(ctx, f.key(m), 0, -1)
			}
		}
		return nil
	})
	for _, r := range reads {
		if err := r.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return intake.Unavailable("rekey: read "+f.name, err)
		}
	}
	var writes []rekeyWrite
	reseal := func(key, where, prefix, sealed, aad string) {
		c.Seen++
		if s.keys.SealedUnderCurrent(sealed) {
			return
		}
		plain, err := s.keys.Open(sealed, aad)
		if err != nil {
			c.Unreadable++
			return
		}
		writes = append(writes, rekeyWrite{key: key, where: where, old: prefix + sealed,
			new: prefix + string(s.keys.Seal(plain, aad))})
	}
	for j, m := range members {
		switch cmd := reads[j].(type) {
		case *redis.StringCmd: // a hash field; redis.Nil when the record or field is gone
			if v, err := cmd.Result(); err == nil && v != "" {
				reseal(f.key(m), f.field, "", v, f.aad(m))
			}
		case *redis.StringSliceCmd: // a list of "<prefix> <sealed>"
			for k, entry := range cmd.Val() {
				prefix, sealed, ok := strings.Cut(entry, " ")
				if !ok {
					continue // not a sealed entry: nothing to rotate
				}
				reseal(f.key(m), strconv.Itoa(k), prefix+" ", sealed, f.aad(m))
			}
		}
	}
	if len(writes) == 0 {
		return nil
	}
	results := make([]*redis.Cmd, len(writes))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, w := range writes {
			kind := "h"
			if f.field == "" {
				kind = "l"
			}
			// Eval, not EvalSha: in a pipeline a missing script cannot be
			// retried, and the script is short.
			results[j] = rekeyScript.Eval(ctx, p, []string{w.key}, kind, w.where, w.old, w.new)
		}
		return nil
	})
	if err != nil {
		return intake.Unavailable("rekey: write "+f.name, err)
	}
	for _, r := range results {
		if n, _ := r.Int(); n == 1 {
			c.Rekeyed++
		} else {
			c.Changed++
		}
	}
	return nil
}

// String is the counts as one line, for the rekey command's output and its
// audit event.
func (c RekeyCount) String() string {
	return fmt.Sprintf("%s: seen=%d rekeyed=%d changed=%d unreadable=%d", c.Field, c.Seen, c.Rekeyed, c.Changed, c.Unreadable)
}
