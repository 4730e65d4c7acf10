package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/mail"
	"github.com/paymtech/leadgate/jobs"
)

// consentModel is what the test believes of each person: the state a
// campaign must find in Redis.
type consentModel struct {
	marketing  string // "", pending, active, withdrawn
	blocked    bool
	suppressed bool
	erased     bool
}

func (m consentModel) eligible() bool {
	return m.marketing == intake.MarketingActive && !m.blocked && !m.suppressed && !m.erased
}

// history applies random consent events to 1,000 people, to Redis through
// the store and to the model alike.
type history struct {
	t      *testing.T
	e      *redisEnv
	rnd    *rand.Rand
	people []string
	model  []consentModel
}

const historyPeople = 1000

func newHistory(t *testing.T, e *redisEnv, seed uint64) *history {
	h := &history{t: t, e: e, rnd: rand.New(rand.NewPCG(seed, 1)), model: make([]consentModel, historyPeople)}
	for n := range historyPeople {
		optIn := h.rnd.IntN(2) == 0
		h.people = append(h.people, e.subscriber(t, n, []string{"kk", "ru", "en"}[n%3], intake.LegalEntity, optIn))
		if optIn {
			h.model[n].marketing = intake.MarketingPending
		}
	}
	return h
}

// step applies one random event to a random person.
func (h *history) step() {
	ctx := context.Background()
	n := h.rnd.IntN(historyPeople)
	p, m := h.people[n], &h.model[n]
	proof := intake.Proof{At: time.Now(), Source: "test"}
	var err error
	switch h.rnd.IntN(10) {
	case 0, 1: // ticks the box again (a new request)
		h.e.subscriber(h.t, n, []string{"kk", "ru", "en"}[n%3], intake.LegalEntity, true)
		if m.erased {
			*m = consentModel{} // a new request after erasure is a new person record
			m.suppressed = true // … still suppressed until a fresh confirmation
		}
		if m.marketing != intake.MarketingActive {
			m.marketing = intake.MarketingPending
		}
	case 2, 3, 4: // follows the emailed link
		var ok bool
		ok, err = h.e.store.People.ConfirmMarketing(ctx, p, intake.Proof{At: time.Now(), IP: "203.0.113.7"})
		if ok {
			m.marketing, m.suppressed = intake.MarketingActive, false
		}
	case 5: // unsubscribes
		_, err = h.e.store.People.Withdraw(ctx, p, proof)
		if m.marketing == intake.MarketingActive || m.marketing == intake.MarketingPending {
			m.marketing = intake.MarketingWithdrawn
		}
	case 6: // bounces or reports spam
		err = h.e.store.People.Suppress(ctx, p, "bounce", proof)
		m.suppressed = true
		if m.marketing == intake.MarketingActive || m.marketing == intake.MarketingPending {
			m.marketing = intake.MarketingWithdrawn
		}
	case 7: // asks to block
		if !m.erased {
			_, err = h.e.store.People.Block(ctx, p)
			m.blocked = true
		}
	case 8: // asks to unblock
		if !m.erased {
			_, _, err = h.e.store.People.Unblock(ctx, p)
			m.blocked = false
		}
	case 9: // asks to erase
		if !m.erased {
			_, err = h.e.store.Subjects.Erase(ctx, p, nil)
			*m = consentModel{erased: true, suppressed: true}
		}
	}
	if err != nil && intake.ErrorCode(err) != intake.ENotFound {
		h.t.Fatalf("event on person %d: %v", n, err)
	}
}

func (h *history) email(n int) string { return fmt.Sprintf("test.testov%d@example.com", n) }

// checkedStore checks, under the history's lock, that every recipient a
// batch marks has consent at that moment; it may crash right after the
// marks (the batch is then never sent).
type checkedStore struct {
	jobs.Campaigns
	mu         *sync.Mutex
	h          *history
	byPerson   map[string]int
	crashRate  float64
	violations []string
}

var errCrash = errors.New("injected crash between mark and send")

func (s *checkedStore) Mark(ctx context.Context, c *intake.Campaign, cands *intake.Candidates) (*intake.Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.Campaigns.Mark(ctx, c, cands)
	if err != nil {
		return nil, err
	}
	for _, r := range b.Recipients {
		if i := s.byPerson[r.Person]; !s.h.model[i].eligible() {
			s.violations = append(s.violations, fmt.Sprintf("person %d marked while %+v", i, s.h.model[i]))
		}
	}
	if len(b.Recipients) > 0 && s.h.rnd.Float64() < s.crashRate {
		return nil, errCrash
	}
	return b, nil
}

// TestCampaignPropertyConsentAtSendTime runs random histories of opt-in,
// confirm, withdraw, block, unblock, erase and bounce for 1,000 people and
// campaigns among them. With no crash, everyone with active confirmed
// consent gets exactly one email and nobody else any; with crashes
// injected between mark and send, provider refusals, lost answers and
// consent changing while the campaign runs, nobody gets two, and nobody is
// mailed without consent at the moment their batch was marked.
func TestCampaignPropertyConsentAtSendTime(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	h := newHistory(t, e, 20261124)
	byPerson := map[string]int{}
	for i, p := range h.people {
		byPerson[p] = i
	}
	for range 4000 {
		h.step()
	}
	var mu sync.Mutex
	store := &checkedStore{Campaigns: e.store.Campaigns, mu: &mu, h: h, byPerson: byPerson}
	var box inbox
	mailer := &fakeMailer{SendFn: func(_ context.Context, m mail.Message) error { box.add(m); return nil }}
	c := &jobs.Campaigner{Store: store, Mailer: mailer, From: mail.Address{Email: "news@example.com"},
		BaseURL: "https://leads.example.com", Batch: 100, Log: slog.New(slog.DiscardHandler)}

	// 1. No crash, nothing changing: exactly the consenting people, once.
	camp := e.newCampaign(t, intake.Segment{})
	runCampaign(t, c, camp.ID)
	want := 0
	for n := range historyPeople {
		eligible := h.model[n].eligible()
		if eligible {
			want++
		}
		if got := box.count(h.email(n)); got != map[bool]int{true: 1, false: 0}[eligible] {
			t.Errorf("person %d (%+v) got %d emails", n, h.model[n], got)
		}
	}
	if want < 100 {
		t.Fatalf("only %d consenting people: the history proves little", want)
	}
	got, _ := e.store.Campaigns.Campaign(context.Background(), camp.ID)
	if got.Sent != want || got.State != intake.CampaignDone {
		t.Errorf("campaign %+v; want %d sent", got, want)
	}

	// 2. Crashes, refusals, lost answers, and consent changing meanwhile.
	box = inbox{}
	store.crashRate = 0.15
	c.Batch = 10 // many batches, many chances to crash
	calls := 0
	mailer.SendFn = func(_ context.Context, m mail.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for range 20 {
			h.step()
		}
		calls++
		switch h.rnd.IntN(8) {
		case 0: // rate limited: not taken
			return &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 429, Kind: integrations.RateLimited}
		case 1: // taken, but the answer was lost
			box.add(m)
			return integrations.Transport("sendgrid", "mail.send", context.DeadlineExceeded)
		}
		box.add(m)
		return nil
	}
	camp = e.newCampaign(t, intake.Segment{})
	for runs := 0; ; runs++ {
		err := c.ProcessTask(context.Background(), campaignTask(camp.ID))
		if err == nil {
			break
		}
		if runs > 500 {
			t.Fatalf("campaign never finished: %v", err)
		}
	}
	for n := range historyPeople {
		if got := box.count(h.email(n)); got > 1 {
			t.Errorf("person %d got %d emails of one campaign", n, got)
		}
	}
	for _, v := range store.violations {
		t.Error(v)
	}
	// Crashes, lost answers and erasures mid-send included, a finished
	// campaign accounts for everyone it counted.
	got, _ = e.store.Campaigns.Campaign(context.Background(), camp.ID)
	checkAddsUp(t, got)
	if got.FailedReasons[intake.ReasonUnknownOutcome] == 0 {
		t.Errorf("campaign %+v: lost answers and crashes should show as unknown_outcome", got)
	}
	if calls < 10 {
		t.Errorf("only %d sends: the crashes were not exercised", calls)
	}
}

// checkAddsUp fails t unless a done campaign's counters add up: recipients
// = sent + skipped + failed, and the failures by reason add up to failed.
func checkAddsUp(t *testing.T, c *intake.Campaign) {
	t.Helper()
	if c.State != intake.CampaignDone {
		t.Errorf("campaign %s is %s, want done", c.ID, c.State)
	}
	if c.Recipients != c.Sent+c.Skipped+c.Failed {
		t.Errorf("campaign: %d recipients, but %d sent + %d skipped + %d failed", c.Recipients, c.Sent, c.Skipped, c.Failed)
	}
	sum := 0
	for _, n := range c.FailedReasons {
		sum += n
	}
	if sum != c.Failed {
		t.Errorf("campaign: failed_reasons %v add up to %d, failed is %d", c.FailedReasons, sum, c.Failed)
	}
}
