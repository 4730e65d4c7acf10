package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/redisstore/ops"
	"github.com/paymtech/leadgate/intake/seal"
)

// rekeyBatch is how many records one rotation batch reads and writes: small
// enough that a pipeline never holds Redis up, large enough to finish a
// million records in minutes.
const rekeyBatch = 500

// rekey runs `leadgate rekey`: every sealed value not under the current
// LEADGATE_DATA_KEY is re-encrypted under it, in batches, alongside live
// traffic. Once it reports unreadable=0, the keys in LEADGATE_OLD_DATA_KEYS
// are no longer needed. It prints counts only, and records the run in the
// audit log (role system, name rekey). The caller closes m.
func (m *Main) rekey(ctx context.Context, stdout io.Writer) error {
	cfg := m.Config
	// In development the data key lives in var/: rotation must use it.
	if err := m.open("rekey", stdout); err != nil {
		return err
	}
	keys, err := seal.NewKeys(cfg.Keys.Data, cfg.Keys.OldData, cfg.Keys.Index)
	if err != nil {
		return err
	}
	store := redisstore.New(m.rdb, keys, m.Now)
	last := time.Now()
	stats, err := store.Rekey(ctx, rekeyBatch, func(st redisstore.RekeyStats) {
		if time.Since(last) >= 5*time.Second { // a sign of life on big stores
			last = time.Now()
			fmt.Fprintln(stdout, "rekey: in progress:", st.Total())
		}
	})
	for _, c := range stats.Fields {
		fmt.Fprintln(stdout, "rekey:", c)
	}
	total := stats.Total()
	fmt.Fprintln(stdout, "rekey:", total)
	ev := intake.AuditEvent{Role: intake.RoleSystem, Name: "rekey", Action: "rekey", Status: 200, Detail: detailOf(total)}
	if err != nil {
		ev.Status = 500
	}
	// Not ctx: an interrupted run is recorded too.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if aerr := ops.New(m.rdb, m.Now).Audit.Append(actx, ev, 0); aerr != nil {
		m.Log.Error("rekey: audit event not recorded", "err", aerr)
		err = errors.Join(err, fmt.Errorf("record the audit event: %w", aerr))
	}
	if err != nil {
		return fmt.Errorf("rekey: %w", err)
	}
	return nil
}

// detailOf is a count line for the audit event, without the field name.
func detailOf(c redisstore.RekeyCount) string {
	_, counts, _ := strings.Cut(c.String(), ": ")
	return counts
}
