package redisstore

import (
	"context"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore/walk"
)

// listBudget is how many leads one page of a filtered listing looks at, at
// most: a filter few leads pass ends the page short (even empty) with a
// cursor to go on from, rather than one request reading every lead.
const listBudget = 2000

// listFields are the clear fields of a lead a filter reads (a lead without
// a state is gone).
var listFields = []any{"state", "products", "assign_team", "assign_owner", "utm_source"}

// List returns the leads f selects, newest first (by when they entered
// f.State; with no state by last change), up to limit, continuing after
// cursor (an earlier Page.Next). The filter is applied while walking the
// index, on the lead's clear fields: one pipelined read per stretch.
func (s *Leads) List(ctx context.Context, f intake.LeadFilter, cursor string, limit int) (*intake.Page, error) {
	index := keyAll // every lead, by last change
	if f.State != "" {
		index = stateKey(f.State)
	}
	found, err := walk.NewestFirst(ctx, s.rdb, walk.Walk{Index: index, Since: f.Since, Until: f.Until, Cursor: cursor,
		Limit: limit, Budget: listBudget}, func(ctx context.Context, ids []string) ([]bool, error) {
		leads, err := s.hashFields(ctx, ids, leadKey, listFields...)
		if err != nil {
			return nil, intake.Unavailable("list leads", err)
		}
		oks := make([]bool, len(ids))
		for i, v := range leads {
			oks[i] = v[0] != "" && f.Fits(splitList(v[1]), v[2], v[3], v[4])
		}
		return oks, nil
	})
	if err != nil {
		return nil, err
	}
	page := &intake.Page{Next: found.Next}
	for _, id := range found.Members {
		l, err := s.Get(ctx, id)
		if intake.ErrorCode(err) == intake.ENotFound {
			continue // erased between the two reads
		} else if err != nil {
			return nil, err
		}
		page.Leads = append(page.Leads, l)
	}
	return page, nil
}
