package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/mail"
	"github.com/paymtech/leadgate/jobs"
)

// longIDN is an address of 243 characters, under the form's old limit of 254
// characters, whose domain is 255 bytes in A-label form: four labels of 57
// "я", each 63 bytes as "xn--41a…".
var longIDN = "test.testov@" + strings.Join(slices.Repeat([]string{strings.Repeat("я", 57)}, 4), ".")

// literalName is a display name full of what a careless driver would read
// as header syntax: it must reach the mailer exactly as typed.
const literalName = `=?utf-8?q?Bcc=3A_test?= "Тест" \Тестов\ =?utf-8?b?0KLQtdGB0YI=?=`

// seed stores a request straight through the store, as data stored before
// intake applied the mailable rule was: no validation, email key as the old
// normalisation made it. The person opts in and confirms, so campaigns
// reach them too. It returns the person hash and lead id.
func (e *redisEnv) seed(t *testing.T, n int, email, name, lang string) (person, lead string) {
	t.Helper()
	ctx := context.Background()
	meta := intake.Metadata{IP: "203.0.113.7", UserAgent: "test-agent"}
	adm, err := e.store.Leads.Accept(ctx, intake.Application{
		Submission: &intake.Submission{EntityType: intake.LegalEntity, Name: name, Phone: fmt.Sprintf("+7701%07d", n),
			Email: email, EmailKey: strings.ToLower(email), Products: []string{"acquiring"}, Lang: lang, ConsentMarketing: true},
		Consent:     intake.Consent{Processing: true, Marketing: true, PolicyVersion: "1", IP: meta.IP, UserAgent: meta.UserAgent},
		Meta:        meta,
		DoubleOptIn: true,
		PerIP:       intake.Limit{N: 1 << 30, Per: time.Hour},
		PerEmail:    intake.Limit{N: 1 << 30, Per: time.Hour},
	})
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	l, err := e.store.Leads.Get(ctx, adm.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.confirm(t, l.Person)
	return l.Person, adm.ID
}

// strictMailer is a mail.Mailer that refuses what the real drivers refuse
// (Validate, as a Permanent error for the whole message) and records, per
// kind of mail, the copies each address received and the display name it
// was given.
type strictMailer struct {
	mu    sync.Mutex
	got   map[string]map[string]int // category → address → copies
	names map[string]string         // address → display name
	// refuse, when set, is asked about every message first: SendGrid's
	// answer to it.
	refuse func(m mail.Message) error
}

func (s *strictMailer) Send(_ context.Context, m mail.Message) error {
	if err := m.Validate(); err != nil {
		return &integrations.Error{System: "sendgrid", Op: "mail.send", Code: err.Error(), Kind: integrations.Permanent, Err: err}
	}
	if s.refuse != nil {
		if err := s.refuse(m); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got, s.names = map[string]map[string]int{}, map[string]string{}
	}
	if s.got[m.Category] == nil {
		s.got[m.Category] = map[string]int{}
	}
	for _, to := range m.To {
		s.got[m.Category][to.Email]++
		s.names[to.Email] = to.Name
	}
	return nil
}

func (s *strictMailer) copies(category, email string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[category][email]
}

// TestPoisonedRecipientsFailAlone: people stored before the mailable rule —
// a name with a line separator, an address over the limit in A-label form —
// are failed alone, with a reason, by the breach notice and the campaign
// alike; a name of quotes and encoded-word look-alikes is delivered as
// written; five ordinary people in the same batches and language groups get
// each mail exactly once, and the counters add up.
func TestPoisonedRecipientsFailAlone(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	ctx := context.Background()
	var ordinary []string
	for n := range 5 {
		email := fmt.Sprintf("test.testov%d@example.com", n)
		e.seed(t, n, email, "Тест Тестов", []string{"ru", "kk"}[n%2])
		ordinary = append(ordinary, email)
	}
	lineSep, lineSepLead := e.seed(t, 10, "test.testov.ls@example.com", "Тест\u2028Тестов", "ru")
	tooLong, tooLongLead := e.seed(t, 11, longIDN, "Тест Тестов", "kk")
	e.seed(t, 12, "test.testov.q@example.com", literalName, "ru")

	var logs bytes.Buffer
	mailer := &strictMailer{}
	c := &jobs.Campaigner{Store: e.store.Campaigns, Mailer: mailer, From: mail.Address{Email: "privacy@example.com", Name: "PaymTech"},
		BaseURL: "https://leads.example.com", Batch: 4, Log: slog.New(slog.NewTextHandler(&logs, nil))}

	notice, err := e.store.Campaigns.CreateCampaign(ctx, &intake.Campaign{Kind: intake.KindBreachNotice, All: true,
		Content: intake.Content{Message: map[string]string{"ru": "Утечка.", "kk": "Ағып кету."}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCampaign(t, c, notice)
	campaign := e.newCampaign(t, intake.Segment{})
	runCampaign(t, c, campaign.ID)

	for _, kind := range []string{"breach_notice", "campaign"} {
		for _, email := range ordinary {
			if n := mailer.copies(kind, email); n != 1 {
				t.Errorf("%s: an ordinary person got %d copies, want 1", kind, n)
			}
		}
		if n := mailer.copies(kind, "test.testov.q@example.com"); n != 1 {
			t.Errorf("%s: the person with quotes in their name got %d copies, want 1", kind, n)
		}
		for _, email := range []string{"test.testov.ls@example.com", longIDN} {
			if n := mailer.copies(kind, email); n != 0 {
				t.Errorf("%s: an unmailable person got %d copies", kind, n)
			}
		}
	}
	if got := mailer.names["test.testov.q@example.com"]; got != literalName {
		t.Errorf("display name %q, want %q as typed", got, literalName)
	}

	wantReasons := map[intake.FailReason]int{intake.ReasonInvalidName: 1, intake.ReasonInvalidAddress: 1}
	wantFailed := map[string]intake.FailReason{lineSep: intake.ReasonInvalidName, tooLong: intake.ReasonInvalidAddress}
	wantLeads := map[string]string{lineSep: lineSepLead, tooLong: tooLongLead}
	for _, id := range []string{notice, campaign.ID} {
		got, err := e.store.Campaigns.Campaign(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		checkAddsUp(t, got)
		if got.Recipients != 8 || got.Sent != 6 || got.Skipped != 0 || got.Failed != 2 || !maps.Equal(got.FailedReasons, wantReasons) {
			t.Errorf("%s: %d recipients, %d sent, %d skipped, %d failed %v; want 8, 6, 0, 2 %v",
				got.Kind, got.Recipients, got.Sent, got.Skipped, got.Failed, got.FailedReasons, wantReasons)
		}
		failures, next, err := e.store.Campaigns.Failures(ctx, id, "", 100)
		if err != nil || next != "" {
			t.Fatalf("Failures: %v, next %q", err, next)
		}
		if len(failures) != len(wantFailed) {
			t.Errorf("%s: failures %+v, want %v", got.Kind, failures, wantFailed)
		}
		for _, f := range failures {
			if wantFailed[f.Person] != f.Reason || !slices.Equal(f.Leads, []string{wantLeads[f.Person]}) {
				t.Errorf("%s: failure %+v, want reason %q and lead %s", got.Kind, f, wantFailed[f.Person], wantLeads[f.Person])
			}
		}
	}
	// The subject export tells the unmailable apart: no mail sent to them.
	sub, err := e.store.Subjects.Subject(ctx, lineSep)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Mail) != 0 {
		t.Errorf("the export lists mail never sent: %+v", sub.Mail)
	}
	for _, secret := range []string{"test.testov", "Тест", "xn--41a", "я"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs hold personal data (%q):\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "invalid_address") || !strings.Contains(logs.String(), "invalid_name") {
		t.Errorf("the logs do not say why people were failed:\n%s", logs.String())
	}
}

// TestProviderBlamesOneRecipient: SendGrid refusing a whole message because
// of one recipient's address fails that person alone; the message goes
// again to the others, once each.
func TestProviderBlamesOneRecipient(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	e.subscribed(t, 5)
	mailer := &strictMailer{refuse: func(m mail.Message) error {
		for i, to := range m.To {
			if to.Email == "test.testov3@example.com" { // a mailbox SendGrid will not take
				return &mail.RecipientError{Index: i, Err: &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 400,
					Code: fmt.Sprintf("personalizations.%d.to.0.email", i), Kind: integrations.Permanent}}
			}
		}
		return nil
	}}
	camp := e.newCampaign(t, intake.Segment{})
	runCampaign(t, e.campaigner(mailer, 0), camp.ID)
	for n := range 5 {
		want := map[bool]int{true: 0, false: 1}[n == 3]
		if got := mailer.copies("campaign", fmt.Sprintf("test.testov%d@example.com", n)); got != want {
			t.Errorf("person %d got %d copies, want %d", n, got, want)
		}
	}
	got, _ := e.store.Campaigns.Campaign(context.Background(), camp.ID)
	checkAddsUp(t, got)
	if got.Sent != 4 || got.Failed != 1 || got.FailedReasons[intake.ReasonRefused] != 1 {
		t.Errorf("campaign %+v; want 4 sent, 1 failed as refused", got)
	}
}

// TestGiveUpCountsEveryoneNotReached runs the fan-out under asynq with no
// retries left while SendGrid answers 503 to everything: the task gives up
// at once, and the campaign reads done with everyone it did not reach —
// the refused batches and those never walked — failed as gave_up.
func TestGiveUpCountsEveryoneNotReached(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	e.subscribed(t, 7)
	_, _ = e.seed(t, 20, longIDN, "Тест Тестов", "ru") // unmailable: failed for that, not for giving up
	unavailable := &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 503, Kind: integrations.Temporary}
	mailer := &fakeMailer{SendFn: func(context.Context, mail.Message) error { return unavailable }}
	c := e.campaigner(mailer, 2)
	camp := e.newCampaign(t, intake.Segment{})

	log := slog.New(slog.DiscardHandler)
	cfg := jobs.ServerConfig(10*time.Millisecond, log)
	cfg.Queues = map[string]int{jobs.QueueMail: 1}
	cfg.TaskCheckInterval = 10 * time.Millisecond
	srv := asynq.NewServerFromRedisClient(e.rdb, cfg)
	if err := srv.Start(jobs.NewMux(jobs.Handlers{Campaigner: c})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	payload, _ := json.Marshal(jobs.SendCampaign{CampaignID: camp.ID})
	if _, err := e.client.Enqueue(asynq.NewTask(jobs.SendCampaign{}.Kind(), payload, asynq.Queue(jobs.QueueMail), asynq.MaxRetry(0))); err != nil {
		t.Fatal(err)
	}
	var got *intake.Campaign
	waitFor(t, "the campaign to give up", func() bool {
		got, _ = e.store.Campaigns.Campaign(context.Background(), camp.ID)
		return got.State == intake.CampaignDone
	})
	checkAddsUp(t, got)
	want := map[intake.FailReason]int{intake.ReasonGaveUp: 7, intake.ReasonInvalidAddress: 1}
	if got.Recipients != 8 || got.Sent != 0 || !maps.Equal(got.FailedReasons, want) {
		t.Errorf("campaign %+v; want 8 recipients, none sent, failed %v", got, want)
	}
	if n := len(mailer.delivered()); n != 0 {
		t.Errorf("%d messages delivered", n)
	}
	// Given up means never sent later: another run finds it done.
	attempts := mailer.attempts()
	if err := c.ProcessTask(context.Background(), campaignTask(camp.ID)); err != nil || mailer.attempts() != attempts {
		t.Errorf("a run after giving up: %v, %d more sends", err, mailer.attempts()-attempts)
	}
}

// TestRefusedAreRetriedInBatches: people refused by a rate limit wait on the
// retry list and are sent again a batch at a time, never as one message
// larger than a batch (SendGrid takes at most 1000 recipients a request).
func TestRefusedAreRetriedInBatches(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	e.subscribed(t, 10)
	var calls int
	var mu sync.Mutex
	mailer := &fakeMailer{SendFn: func(context.Context, mail.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 2 {
			return &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 429, Kind: integrations.RateLimited}
		}
		return nil
	}}
	camp := e.newCampaign(t, intake.Segment{})
	runCampaign(t, e.campaigner(mailer, 2), camp.ID)
	counts := map[string]int{}
	for _, m := range mailer.delivered() {
		if len(m.To) > 2 {
			t.Errorf("a message of %d recipients; batches are 2", len(m.To))
		}
		for _, to := range m.To {
			counts[to.Email]++
		}
	}
	for n := range 10 {
		if got := counts[fmt.Sprintf("test.testov%d@example.com", n)]; got != 1 {
			t.Errorf("person %d got %d copies, want 1", n, got)
		}
	}
	got, _ := e.store.Campaigns.Campaign(context.Background(), camp.ID)
	checkAddsUp(t, got)
	if got.Sent != 10 {
		t.Errorf("campaign %+v, want 10 sent", got)
	}
}

// crashingStore fails the first Mark after it has marked: a worker dying
// between marking a batch and sending it.
type crashingStore struct {
	jobs.Campaigns
	crashed bool
}

func (s *crashingStore) Mark(ctx context.Context, c *intake.Campaign, cands *intake.Candidates) (*intake.Batch, error) {
	b, err := s.Campaigns.Mark(ctx, c, cands)
	if err == nil && !s.crashed && len(b.Recipients) > 0 {
		s.crashed = true
		return nil, errCrash
	}
	return b, err
}

// TestCrashBetweenMarkAndSend: the batch a crashed run marked is never sent
// (at most once), and the next run counts it as failed, unknown_outcome,
// so the finished campaign still adds up.
func TestCrashBetweenMarkAndSend(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	e.subscribed(t, 6)
	mailer := &fakeMailer{}
	c := e.campaigner(mailer, 2)
	c.Store = &crashingStore{Campaigns: e.store.Campaigns}
	camp := e.newCampaign(t, intake.Segment{})
	if err := c.ProcessTask(context.Background(), campaignTask(camp.ID)); err == nil {
		t.Fatal("the crashed run ended without an error")
	}
	runCampaign(t, c, camp.ID)
	got, _ := e.store.Campaigns.Campaign(context.Background(), camp.ID)
	checkAddsUp(t, got)
	if got.Recipients != 6 || got.Sent != 4 || got.FailedReasons[intake.ReasonUnknownOutcome] != 2 {
		t.Errorf("campaign %+v; want 6 recipients, 4 sent, 2 unknown_outcome", got)
	}
	seen := map[string]int{}
	for _, m := range mailer.delivered() {
		for _, to := range m.To {
			seen[to.Email]++
		}
	}
	if len(seen) != 4 || slices.ContainsFunc(slices.Collect(maps.Values(seen)), func(n int) bool { return n != 1 }) {
		t.Errorf("copies by address %v; want 4 people once each", seen)
	}
}

// erasingStore erases the second person of the first batch it marks, before
// the batch is sent: an erasure landing while they are in flight.
type erasingStore struct {
	jobs.Campaigns
	e      *redisEnv
	erased string
}

func (s *erasingStore) Mark(ctx context.Context, c *intake.Campaign, cands *intake.Candidates) (*intake.Batch, error) {
	b, err := s.Campaigns.Mark(ctx, c, cands)
	if err == nil && s.erased == "" && len(b.Recipients) > 1 {
		s.erased = b.Recipients[1].Person
		if _, err := s.e.store.Subjects.Erase(ctx, s.erased, nil); err != nil {
			return nil, err
		}
	}
	return b, err
}

// TestErasedInFlightLeavesNoTrace: a person erased between their mark and
// the outcome is neither counted sent nor named by the campaign; finishing
// counts them skipped, so it adds up.
func TestErasedInFlightLeavesNoTrace(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	e.subscribed(t, 3)
	c := e.campaigner(&fakeMailer{}, 10)
	store := &erasingStore{Campaigns: e.store.Campaigns, e: e}
	c.Store = store
	camp := e.newCampaign(t, intake.Segment{})
	runCampaign(t, c, camp.ID)
	ctx := context.Background()
	got, _ := e.store.Campaigns.Campaign(ctx, camp.ID)
	checkAddsUp(t, got)
	if got.Recipients != 3 || got.Sent != 2 || got.Skipped != 1 || got.Failed != 0 {
		t.Errorf("campaign %+v; want 3 recipients, 2 sent, the erased one skipped", got)
	}
	keys, err := e.rdb.Keys(ctx, "lg:campaign:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if e.rdb.Type(ctx, k).Val() != "hash" {
			continue
		}
		for f, v := range e.rdb.HGetAll(ctx, k).Val() {
			if strings.Contains(f+v, store.erased) {
				t.Errorf("%s still names the erased person", k)
			}
		}
	}
}
