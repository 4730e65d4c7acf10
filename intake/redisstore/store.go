package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/seal"
)

// Store is every part of the store over one Redis connection.
type Store struct {
	Leads     *Leads
	People    *People
	Campaigns *Campaigns
	Subjects  *Subjects
	Audit     *Audit
	Retention *Retention
	Workers   *Workers
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
	s := &Store{db: d, Leads: &Leads{d}, People: &People{d}, Campaigns: &Campaigns{d}, Audit: &Audit{d},
		Retention: &Retention{d}, Workers: &Workers{d}}
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

// openContact decrypts a person's sealed contact.
func (s db) openContact(sealed, person string) (intake.Contact, error) {
	var c intake.Contact
	plain, err := s.keys.Open([]byte(sealed), person)
	if err != nil {
		return c, fmt.Errorf("person contact: %w", err)
	}
	err = json.Unmarshal(plain, &c)
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

// newestFirst walks the sorted set index from its highest score (ms) down
// to since (zero: all), or from just after cursor — "<ms>.<member>", an
// earlier page's next — and hands each member to keep until keep has
// counted limit of them. It returns the cursor after the last one counted,
// or "" when the index ended first. keep returns false for a member whose
// record is gone meanwhile: it is skipped, not counted.
func (s db) newestFirst(ctx context.Context, index string, since time.Time, cursor string, limit int,
	keep func(member string) (bool, error)) (next string, err error) {
	top, bottom := "+inf", "-inf"
	var afterScore int64
	var afterMember string
	if cursor != "" {
		ms, member, ok := strings.Cut(cursor, ".")
		n, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil || member == "" {
			return "", &intake.Error{Code: intake.EInvalid, Message: "cursor must be the next_cursor of an earlier page",
				Fields: intake.FieldErrors{"cursor": {Key: "field.invalid"}}}
		}
		top, afterScore, afterMember = ms, n, member
	}
	if !since.IsZero() {
		bottom = strconv.FormatInt(since.UnixMilli(), 10)
	}
	// Members of the cursor's own millisecond come again; fetch enough
	// extra to step over them.
	zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, index, &redis.ZRangeBy{
		Max: top, Min: bottom, Count: int64(limit + 64)}).Result()
	if err != nil {
		return "", intake.Unavailable("list records", err)
	}
	counted := 0
	var last redis.Z
	for _, z := range zs {
		member := z.Member.(string)
		if cursor != "" && int64(z.Score) == afterScore && member >= afterMember {
			continue // members of equal score come in descending order
		}
		if counted == limit {
			return fmt.Sprintf("%d.%s", int64(last.Score), last.Member), nil
		}
		ok, err := keep(member)
		if err != nil {
			return "", err
		}
		if ok {
			counted++
			last = z
		}
	}
	return "", nil
}
