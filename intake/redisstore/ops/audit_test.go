package ops

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
)

// TestAuditListAcrossSequences: the audit cursor steps to the id just
// before it, across a sequence number of 0 (the previous millisecond's
// last possible id), to 0-0 and past it without asking Redis for "(0-0".
func TestAuditListAcrossSequences(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	for _, id := range []string{"1-1", "5-0", "5-1", "6-0"} {
		if err := f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: redisstore.AuditStream, ID: id, Values: []any{"action", "test " + id}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	cursor := ""
	for range 10 {
		events, next, err := f.store.Audit.List(ctx, time.Time{}, cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			got = append(got, ev.ID)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if strings.Join(got, ",") != "6-0,5-1,5-0,1-1" {
		t.Fatalf("pages gave %v, want every event once, newest first", got)
	}
	for _, c := range []struct {
		cursor string
		want   int
	}{{"0-0", 0}, {"1-0", 0}, {"1-1", 0}, {"1-2", 1}, {"5-0", 1}, {"18446744073709551615-18446744073709551615", 4}} {
		events, next, err := f.store.Audit.List(ctx, time.Time{}, c.cursor, 10)
		if err != nil || len(events) != c.want || next != "" {
			t.Errorf("after %s: %d events, next %q, %v; want %d", c.cursor, len(events), next, err, c.want)
		}
	}
	for _, bad := range []string{"x", "1", "1-", "-1", "1-2-3", "+1-0", "1-+0", "-1-0", " 1-0", "0x1-0",
		"18446744073709551616-0", "0-18446744073709551616"} {
		if _, _, err := f.store.Audit.List(ctx, time.Time{}, bad, 10); intake.ErrorCode(err) != intake.EBadRequest {
			t.Errorf("cursor %q: %v, want bad_request", bad, err)
		}
	}
}
