package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore/batch"
	"github.com/paymtech/leadgate/intake/seal"
)

// Store is every part of the store over one Redis connection.
type Store struct {
	Leads     *Leads
	People    *People
	Campaigns *Campaigns
	Subjects  *Subjects
	Retention *Retention
	db
}

// db is what every part shares: the connection, the keys that seal
// personal fields and hash lookups, and the clock.
type db struct {
	rdb  redis.UniversalClient
	keys *seal.Keys
	now  func() time.Time
}

// New returns the store over rdb. keys may be nil for work that opens no
// sealed field (the purge); now is the clock (time.Now in production).
func New(rdb redis.UniversalClient, keys *seal.Keys, now func() time.Time) *Store {
	d := db{rdb: rdb, keys: keys, now: now}
	s := &Store{db: d, Leads: &Leads{db: d, accept: batch.New(rdb, acceptScript)}, People: &People{d}, Campaigns: &Campaigns{d}, Retention: &Retention{d}}
	s.Subjects = &Subjects{db: d, leads: s.Leads, people: s.People, campaigns: s.Campaigns}
	return s
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func msTime(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Ping reports whether Redis answers, for readiness.
func (s *Store) Ping(ctx context.Context) error {
	return s.rdb.Ping(ctx).Err()
}

// sealContact seals a person's contact, bound to their person hash.
func (s db) sealContact(c intake.Contact, person string) []byte {
	plain, _ := c.MarshalBinary()
	return s.keys.Seal(plain, person)
}

// openContact decrypts a person's sealed contact, in either encoding
// (intake.Contact.UnmarshalBinary).
func (s db) openContact(sealed, person string) (intake.Contact, error) {
	var c intake.Contact
	plain, err := s.keys.Open(sealed, person)
	if err != nil {
		return c, fmt.Errorf("person contact: %w", err)
	}
	err = c.UnmarshalBinary(plain)
	return c, err
}

// scanKeys returns the keys matching match for which keep is true.
func (s db) scanKeys(ctx context.Context, match string, keep func(string) bool) ([]string, error) {
	var out []string
	iter := s.rdb.Scan(ctx, 0, match, subjectScanCount).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); keep(k) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, intake.Unavailable("scan keys", err)
	}
	return out, nil
}

func stringsOf(v any) []string {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// splitList reads a comma list as stored ("" is none).
func splitList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// hashFields reads fields of the hash key(id) of each of ids in one
// pipeline, "" for a field not set. A campaign's batch is a thousand
// HMGETs, so their arguments share one array and their answers come as
// strings, not boxed values (52 → 45 allocations a recipient,
// BENCHMARKS.md, fan-out).
func (s db) hashFields(ctx context.Context, ids []string, key func(string) string, fields ...any) ([][]string, error) {
	width := 2 + len(fields)
	args := make([]any, width*len(ids))
	cmds := make([]*redis.StringSliceCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			a := args[i*width : (i+1)*width : (i+1)*width]
			a[0], a[1] = "hmget", key(id)
			copy(a[2:], fields)
			cmds[i] = redis.NewStringSliceCmd(ctx, a...)
			_ = p.Process(ctx, cmds[i])
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([][]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}
