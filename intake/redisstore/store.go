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
	s := &Store{db: d, Leads: &Leads{d}, People: &People{d}, Campaigns: &Campaigns{d}, Retention: &Retention{d}}
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
// record is gone meanwhile: it is skipped, not counted. A cursor that is not
// of that shape is a malformed request (EBadRequest); any other pages.
func (s db) newestFirst(ctx context.Context, index string, since time.Time, cursor string, limit int,
	keep func(member string) (bool, error)) (next string, err error) {
	if limit < 1 {
		return "", nil
	}
	top, bottom := "+inf", "-inf"
	// at is where the walk stands: members at or above it are behind it.
	// Members of equal score come in descending member order, so "above"
	// is a higher score, or the same score and a member not below at's.
	var at, last walkPos
	if cursor != "" {
		if at, err = parseWalkCursor(cursor); err != nil {
			return "", err
		}
		top = strconv.FormatInt(at.score, 10)
	}
	if !since.IsZero() {
		bottom = strconv.FormatInt(since.UnixMilli(), 10)
	}
	// Each read starts at at's millisecond, whose members already passed
	// come again; a read holding only those (more members in one
	// millisecond than a read holds) is made again twice as long. A read
	// may also end before limit is counted (records gone meanwhile): the
	// walk reads on until limit is counted and one more member is behind
	// it, or the index ends — never ending a listing early.
	batch := int64(limit) + 64
	counted := 0
	for {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, index, &redis.ZRangeBy{Max: top, Min: bottom, Count: batch}).Result()
		if err != nil {
			return "", intake.Unavailable("list records", err)
		}
		moved := false
		for _, z := range zs {
			p := walkPos{set: true, score: int64(z.Score), member: z.Member.(string)}
			if at.set && p.score == at.score && p.member >= at.member {
				continue
			}
			if counted == limit {
				return last.String(), nil
			}
			at, moved = p, true
			ok, err := keep(p.member)
			if err != nil {
				return "", err
			}
			if ok {
				counted++
				last = p
			}
		}
		if int64(len(zs)) < batch {
			return "", nil
		}
		top = strconv.FormatInt(at.score, 10)
		if !moved {
			batch *= 2
		}
	}
}

// walkPos is a place in a newest-first walk: a member and its score (ms).
type walkPos struct {
	set    bool
	score  int64
	member string
}

// String is the position as a cursor, "<ms>.<member>".
func (p walkPos) String() string { return strconv.FormatInt(p.score, 10) + "." + p.member }

// parseWalkCursor reads a cursor made by walkPos.String: digits, a dot, a
// member. The score holds no dot, so the first one splits whatever the
// member holds.
func parseWalkCursor(cursor string) (walkPos, error) {
	ms, member, ok := strings.Cut(cursor, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 || ms[0] == '+' || member == "" {
		return walkPos{}, &intake.Error{Code: intake.EBadRequest, Message: "cursor must be the next_cursor of an earlier page"}
	}
	return walkPos{set: true, score: n, member: member}, nil
}
