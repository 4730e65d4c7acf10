// Package walk pages through a Redis sorted set scored by time (ms), newest
// first, with a cursor that any well-formed value pages from. Every listing
// of leadgate that goes newest first (leads by state, subject requests)
// walks this way, filtered or not. It is a package of its own because
// redisstore is near its size limit; it knows no key: callers name the
// index.
package walk

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
)

// Walk is one page's walk of Index.
type Walk struct {
	Index string
	// Since and Until bound the members' scores, both included; zero is
	// open.
	Since, Until time.Time
	// Cursor is an earlier page's Next: the walk starts just after it. ""
	// starts at the newest member.
	Cursor string
	// Limit is how many counted members make a page.
	Limit int
	// Budget bounds how many members one page looks at (0: no bound), so a
	// filter that few members pass cannot make one request read a whole
	// index: the page then ends short — even empty — with a Next that
	// continues after the last member looked at.
	Budget int
}

// Keep decides, for a batch of members in walk order, which count towards
// the page: those passing a filter, and whose record is still there.
type Keep func(ctx context.Context, members []string) ([]bool, error)

// Page is what one walk found.
type Page struct {
	Members []string // the counted members, newest first
	Next    string   // the cursor of the next page; "" when the index ended
}

// NewestFirst walks w.Index from its highest score down, handing members to
// keep (nil: every member counts) until w.Limit are counted, the index ends
// or w.Budget members were looked at. A cursor that is not of the shape
// Page.Next has is a malformed request (EBadRequest); any other pages.
func NewestFirst(ctx context.Context, rdb redis.Cmdable, w Walk, keep Keep) (Page, error) {
	var page Page
	if w.Limit < 1 {
		return page, nil
	}
	top, bottom := "+inf", "-inf"
	// at is where the walk stands: members at or above it are behind it.
	// Members of equal score come in descending member order, so "above"
	// is a higher score, or the same score and a member not below at's.
	var at, last pos
	if w.Cursor != "" {
		var err error
		if at, err = parseCursor(w.Cursor); err != nil {
			return page, err
		}
		top = strconv.FormatInt(at.score, 10)
	}
	if !w.Until.IsZero() && (!at.set || w.Until.UnixMilli() < at.score) {
		top = strconv.FormatInt(w.Until.UnixMilli(), 10)
	}
	if !w.Since.IsZero() {
		bottom = strconv.FormatInt(w.Since.UnixMilli(), 10)
	}
	// Each read starts at at's millisecond, whose members already passed
	// come again; a read holding only those (more members in one
	// millisecond than a read holds) is made again twice as long. A read
	// may also end before Limit is counted (filtered out, or records gone
	// meanwhile): the walk reads on until Limit is counted and one more
	// member is behind it, the index ends, or the budget is spent — never
	// ending a listing early.
	batch := int64(w.Limit) + 64
	looked := 0
	for {
		zs, err := rdb.ZRevRangeByScoreWithScores(ctx, w.Index, &redis.ZRangeBy{Max: top, Min: bottom, Count: batch}).Result()
		if err != nil {
			return page, intake.Unavailable("list records", err)
		}
		var fresh []pos
		for _, z := range zs {
			p := pos{set: true, score: int64(z.Score), member: z.Member.(string)}
			if !at.set || p.score != at.score || p.member < at.member {
				fresh = append(fresh, p)
			}
		}
		if len(fresh) > 0 && len(page.Members) == w.Limit {
			page.Next = last.String()
			return page, nil
		}
		if len(fresh) > 0 && w.Budget > 0 && looked >= w.Budget {
			page.Next = at.String()
			return page, nil
		}
		n := len(fresh)
		if w.Budget > 0 {
			fresh = fresh[:min(n, w.Budget-looked)]
		}
		oks, err := keepAll(ctx, keep, fresh)
		if err != nil {
			return page, err
		}
		for i, p := range fresh {
			if len(page.Members) == w.Limit {
				page.Next = last.String()
				return page, nil
			}
			at = p
			looked++
			if oks[i] {
				page.Members = append(page.Members, p.member)
				last = p
			}
		}
		if int64(len(zs)) < batch && len(fresh) == n { // the index ended, all of it looked at
			return page, nil
		}
		top = strconv.FormatInt(at.score, 10)
		if len(fresh) == 0 {
			batch *= 2
		}
	}
}

// keepAll asks keep about members; nil keep counts them all.
func keepAll(ctx context.Context, keep Keep, members []pos) ([]bool, error) {
	oks := make([]bool, len(members))
	if keep == nil {
		for i := range oks {
			oks[i] = true
		}
		return oks, nil
	}
	if len(members) == 0 {
		return oks, nil
	}
	names := make([]string, len(members))
	for i, p := range members {
		names[i] = p.member
	}
	return keep(ctx, names)
}

// pos is a place in a newest-first walk: a member and its score (ms).
type pos struct {
	set    bool
	score  int64
	member string
}

// String is the position as a cursor, "<ms>.<member>".
func (p pos) String() string { return strconv.FormatInt(p.score, 10) + "." + p.member }

// parseCursor reads a cursor made by pos.String: digits, a dot, a member.
// The score holds no dot, so the first one splits whatever the member
// holds.
func parseCursor(cursor string) (pos, error) {
	ms, member, ok := strings.Cut(cursor, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 || ms[0] == '+' || member == "" {
		return pos{}, &intake.Error{Code: intake.EBadRequest, Message: "cursor must be the next_cursor of an earlier page"}
	}
	return pos{set: true, score: n, member: member}, nil
}
