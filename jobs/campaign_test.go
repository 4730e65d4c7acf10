package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// subscriber stores a request of the n-th fake person, in lang, ticking
// the marketing box when optIn; it returns their person hash.
func (e *redisEnv) subscriber(t testing.TB, n int, lang, entity string, optIn bool) string {
	t.Helper()
	email := fmt.Sprintf("test.testov%d@example.com", n)
	meta := intake.Metadata{IP: "203.0.113.7", UserAgent: "test-agent"}
	_, err := e.store.Leads.Accept(context.Background(), intake.Application{
		Submission: &intake.Submission{EntityType: entity, Name: "Test Testov", Phone: fmt.Sprintf("+7701%07d", n),
			Email: email, EmailKey: email, Products: []string{"acquiring"}, Lang: lang, ConsentMarketing: optIn},
		Consent:     intake.Consent{Processing: true, Marketing: optIn, PolicyVersion: "1", IP: meta.IP, UserAgent: meta.UserAgent},
		Meta:        meta,
		DoubleOptIn: true,
		PerIP:       intake.Limit{N: 1 << 30, Per: time.Hour},
		PerEmail:    intake.Limit{N: 1 << 30, Per: time.Hour},
	})
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	person, _ := e.store.People.PersonOf(email)
	return person
}

func (e *redisEnv) confirm(t testing.TB, person string) {
	t.Helper()
	if _, err := e.store.People.ConfirmMarketing(context.Background(), person, intake.Proof{At: time.Now(), IP: "203.0.113.7"}); err != nil {
		t.Fatal(err)
	}
}

// newCampaign stores a marketing campaign in ru and en and returns it.
func (e *redisEnv) newCampaign(t testing.TB, seg intake.Segment) *intake.Campaign {
	t.Helper()
	ctx := context.Background()
	id, err := e.store.Campaigns.CreateCampaign(ctx, &intake.Campaign{Kind: intake.KindCampaign, Name: "November news", Segment: seg,
		Content: intake.Content{Subject: map[string]string{"ru": "Новости", "en": "News"},
			HTML: map[string]string{"ru": "<p>Эквайринг</p>", "en": "<p>Acquiring</p>"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.store.Campaigns.Campaign(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func campaignTask(id string) *asynq.Task {
	payload, _ := json.Marshal(jobs.SendCampaign{CampaignID: id})
	return asynq.NewTask(jobs.SendCampaign{}.Kind(), payload)
}

// inbox counts the copies each address received, across messages.
type inbox struct {
	mu  sync.Mutex
	got map[string]int
}

func (b *inbox) add(m mail.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.got == nil {
		b.got = map[string]int{}
	}
	for _, to := range m.To {
		b.got[to.Email]++
	}
}

func (b *inbox) count(email string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.got[email]
}

func TestCampaignSendsOncePerConsentingPersonWithUnsubscribe(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	var people []string
	for n := range 7 {
		p := e.subscriber(t, n, []string{"ru", "kk", "en"}[n%3], intake.LegalEntity, n != 6)
		if n < 5 {
			e.confirm(t, p) // 5 and 6 never confirm; 6 never opted in
		}
		people = append(people, p)
	}
	var box inbox
	mailer := &fakeMailer{SendFn: func(_ context.Context, m mail.Message) error { box.add(m); return nil }}
	c := &jobs.Campaigner{Store: e.store.Campaigns, Mailer: mailer, From: mail.Address{Email: "news@example.com"},
		BaseURL: "https://leads.example.com", ASMGroupID: 4242, Batch: 2, Log: slog.New(slog.DiscardHandler)}
	camp := e.newCampaign(t, intake.Segment{})
	if err := c.ProcessTask(context.Background(), campaignTask(camp.ID)); err != nil {
		t.Fatal(err)
	}
	for n := range 7 {
		want := map[bool]int{true: 1, false: 0}[n < 5]
		if got := box.count(fmt.Sprintf("test.testov%d@example.com", n)); got != want {
			t.Errorf("person %d got %d copies, want %d", n, got, want)
		}
	}
	for _, m := range mailer.delivered() {
		if m.ASMGroupID != 4242 || m.Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" || m.Category != "campaign" || m.Ref != camp.ID {
			t.Errorf("message lacks the marketing settings: %+v", m)
		}
		if len(m.To) > 2 {
			t.Errorf("a message of %d recipients; batches are 2", len(m.To))
		}
		for i, p := range m.PerRecipient {
			u := p.Headers["List-Unsubscribe"]
			token := p.Substitutions["-unsubscribe-token-"]
			if !strings.HasPrefix(u, "<https://leads.example.com/v1/unsubscribe?lang=") || !strings.HasSuffix(u, "&token="+token+">") || token == "" {
				t.Errorf("recipient %d: List-Unsubscribe %q, token %q", i, u, token)
			}
			if strings.Contains(u, "example.com/v1") && strings.Contains(u, "test.testov") {
				t.Errorf("the unsubscribe URL holds the address")
			}
		}
		if !strings.Contains(m.HTML, "-unsubscribe-token-") {
			t.Error("the body lacks the unsubscribe slot")
		}
	}
	got, _ := e.store.Campaigns.Campaign(context.Background(), camp.ID)
	if got.State != intake.CampaignDone || got.Sent != 5 || got.Recipients != 5 || got.Skipped != 0 || got.Failed != 0 {
		t.Errorf("campaign = %+v, want done, 5 recipients, 5 sent", got)
	}
	// The subject export shows the email to whoever got it, and only them.
	for n, p := range people {
		sub, err := e.store.Subjects.Subject(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[n < 5]; len(sub.Mail) != want || want == 1 && (sub.Mail[0].Ref != camp.ID || sub.Mail[0].Kind != intake.KindCampaign) {
			t.Errorf("person %d's mail log %+v", n, sub.Mail)
		}
	}
	// A retry of the finished task sends nothing more.
	before := len(mailer.delivered())
	if err := c.ProcessTask(context.Background(), campaignTask(camp.ID)); err != nil {
		t.Fatal(err)
	}
	if n := len(mailer.delivered()); n != before {
		t.Errorf("%d messages after a repeat, want %d", n, before)
	}
}

func TestCampaignSegment(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	for n, spec := range []struct{ lang, entity string }{{"ru", intake.LegalEntity}, {"kk", intake.LegalEntity},
		{"ru", intake.SoleProprietor}, {"ru", intake.LegalEntity}} {
		e.confirm(t, e.subscriber(t, n, spec.lang, spec.entity, true))
	}
	var box inbox
	c := e.campaigner(&fakeMailer{SendFn: func(_ context.Context, m mail.Message) error { box.add(m); return nil }}, 0)
	camp := e.newCampaign(t, intake.Segment{Lang: "ru", EntityType: intake.LegalEntity, Products: []string{"pos", "acquiring"}})
	if err := c.ProcessTask(context.Background(), campaignTask(camp.ID)); err != nil {
		t.Fatal(err)
	}
	for n, want := range []int{1, 0, 0, 1} {
		if got := box.count(fmt.Sprintf("test.testov%d@example.com", n)); got != want {
			t.Errorf("person %d got %d, want %d", n, got, want)
		}
	}
	got, _ := e.store.Campaigns.Campaign(context.Background(), camp.ID)
	if got.Recipients != 2 || got.Sent != 2 {
		t.Errorf("campaign = %+v, want 2 recipients (the segment), 2 sent", got)
	}
	other := e.newCampaign(t, intake.Segment{Products: []string{"pos"}})
	if err := c.ProcessTask(context.Background(), campaignTask(other.ID)); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.store.Campaigns.Campaign(context.Background(), other.ID); got.Recipients != 0 || got.State != intake.CampaignDone {
		t.Errorf("nobody asked about pos, yet %+v", got)
	}
}

// dialRefused is what the SendGrid driver returns when no connection could
// be made: certainly unsent.
func dialRefused() error {
	return integrations.Transport("sendgrid", "mail.send", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
}

// runCampaign runs the campaign:send task as asynq would: again after
// every error that is not permanent.
func runCampaign(t *testing.T, c *jobs.Campaigner, id string) {
	t.Helper()
	var err error
	for range 20 {
		if err = c.ProcessTask(context.Background(), campaignTask(id)); err == nil {
			return
		}
		if errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("the campaign stopped for good: %v", err)
		}
	}
	t.Fatalf("campaign never finished: %v", err)
}

// subscribed stores n fake people with confirmed consent to product news,
// in Russian.
func (e *redisEnv) subscribed(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		e.confirm(t, e.subscriber(t, i, "ru", intake.LegalEntity, true))
	}
}

// campaigner is a Campaigner over e's store sending through mailer in
// batches of batch.
func (e *redisEnv) campaigner(mailer mail.Mailer, batch int) *jobs.Campaigner {
	return &jobs.Campaigner{Store: e.store.Campaigns, Mailer: mailer, From: mail.Address{Email: "news@example.com"},
		BaseURL: "https://leads.example.com", Batch: batch, Log: slog.New(slog.DiscardHandler)}
}

// TestCampaignSendFailures: what SendGrid certainly did not take is sent
// later, once; what it may have taken is never sent again.
func TestCampaignSendFailures(t *testing.T) {
	t.Parallel()
	rateLimited := &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 429, Kind: integrations.RateLimited, RetryAfter: time.Second}
	lost := integrations.Transport("sendgrid", "mail.send", context.DeadlineExceeded)
	for _, tc := range []struct {
		name         string
		people       int
		answer       map[int]error // by call number; nil otherwise
		delivered    map[int]bool  // calls that reach the inbox despite their error
		sent, failed int
	}{
		{"429 and refused connection: sent later", 6, map[int]error{2: rateLimited, 3: dialRefused()}, nil, 6, 0},
		{"answer lost: failed, never repeated", 4, map[int]error{1: lost}, map[int]bool{1: true}, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setupRedis(t, time.Now)
			e.subscribed(t, tc.people)
			var box inbox
			var calls int
			var mu sync.Mutex
			mailer := &fakeMailer{SendFn: func(_ context.Context, m mail.Message) error {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if err := tc.answer[calls]; err != nil && !tc.delivered[calls] {
					return err
				}
				box.add(m)
				return tc.answer[calls]
			}}
			camp := e.newCampaign(t, intake.Segment{})
			runCampaign(t, e.campaigner(mailer, 2), camp.ID)
			for n := range tc.people {
				if got := box.count(fmt.Sprintf("test.testov%d@example.com", n)); got != 1 {
					t.Errorf("person %d got %d copies, want 1", n, got)
				}
			}
			got, _ := e.store.Campaigns.Campaign(context.Background(), camp.ID)
			if got.Sent != tc.sent || got.Failed != tc.failed || got.Recipients != tc.people || got.State != intake.CampaignDone {
				t.Errorf("campaign %+v; want %d recipients, %d sent, %d failed", got, tc.people, tc.sent, tc.failed)
			}
			checkAddsUp(t, got)
			if tc.failed > 0 && got.FailedReasons[intake.ReasonUnknownOutcome] != tc.failed {
				t.Errorf("failed_reasons %v; want %d unknown_outcome", got.FailedReasons, tc.failed)
			}
		})
	}
}

func TestCampaignCancelStopsTheRest(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	e.subscribed(t, 6)
	camp := e.newCampaign(t, intake.Segment{})
	mailer := &fakeMailer{SendFn: func(ctx context.Context, m mail.Message) error {
		return e.store.Campaigns.CancelCampaign(ctx, camp.ID) // cancelled during the first send
	}}
	c := e.campaigner(mailer, 2)
	if err := c.ProcessTask(context.Background(), campaignTask(camp.ID)); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.Campaigns.Campaign(context.Background(), camp.ID)
	// The batch being sent and the one prepared alongside it were marked
	// before the cancel; nothing after them goes.
	if n := mailer.attempts(); got.State != intake.CampaignCancelled || n > 2 {
		t.Errorf("campaign %+v after %d sends; want cancelled after at most 2", got, n)
	}
	if err := e.store.Campaigns.CancelCampaign(context.Background(), camp.ID); err != nil {
		t.Errorf("cancelling twice: %v", err)
	}
}

func TestBreachNoticeReachesEveryoneButTheErased(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	ctx := context.Background()
	var people []string
	for n := range 4 {
		people = append(people, e.subscriber(t, n, []string{"kk", "ru", "en", "kk"}[n], intake.SoleProprietor, n == 0))
	}
	// 0 has withdrawn consent, 1 bounced: a notice is transactional and
	// still goes; 3 is erased.
	if _, err := e.store.People.Withdraw(ctx, people[0], intake.Proof{At: time.Now(), Source: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.People.Suppress(ctx, people[1], "bounce", intake.Proof{At: time.Now(), Source: "test"}); err != nil {
		t.Fatal(err)
	}
	id, err := e.store.Campaigns.CreateCampaign(ctx, &intake.Campaign{Kind: intake.KindBreachNotice, All: true,
		Content: intake.Content{Message: map[string]string{"ru": "Утечка.", "kk": "Ағып кету."}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Subjects.Erase(ctx, people[3], nil); err != nil { // after the notice was created, before it is sent
		t.Fatal(err)
	}
	var msgs []mail.Message
	var mu sync.Mutex
	c := &jobs.Campaigner{Store: e.store.Campaigns, Mailer: &fakeMailer{SendFn: func(_ context.Context, m mail.Message) error {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, m)
		return nil
	}}, From: mail.Address{Email: "privacy@example.com"}, BaseURL: "https://leads.example.com", ASMGroupID: 7, Log: slog.New(slog.DiscardHandler)}
	if err := c.ProcessTask(ctx, campaignTask(id)); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range msgs {
		if m.ASMGroupID != 0 || m.Headers["List-Unsubscribe-Post"] != "" || m.Category != "breach_notice" {
			t.Errorf("a notice carries marketing settings: %+v", m)
		}
		for _, to := range m.To {
			got[to.Email] = m.Text
		}
	}
	if len(got) != 3 || got["test.testov3@example.com"] != "" {
		t.Fatalf("notice went to %d people: %v", len(got), got)
	}
	if !strings.Contains(got["test.testov0@example.com"], "Ағып кету.") || !strings.Contains(got["test.testov2@example.com"], "Утечка.") {
		t.Errorf("languages: kk speaker got %q…, en speaker (no en text: ru fallback) got %q…", got["test.testov0@example.com"][:40], got["test.testov2@example.com"][:40])
	}
	camp, _ := e.store.Campaigns.Campaign(ctx, id)
	if camp.Sent != 3 || camp.State != intake.CampaignDone {
		t.Errorf("notice = %+v, want 3 sent", camp)
	}
	checkAddsUp(t, camp)
}

// TestCampaignShutdownKeepsTheRefused: a worker stopping (its task context
// cancelled) while SendGrid refuses a batch still records the batch for
// the retry, so the next run sends it.
func TestCampaignShutdownKeepsTheRefused(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	e.subscribed(t, 4)
	ctx, shutdown := context.WithCancel(context.Background())
	var box inbox
	var calls int
	var mu sync.Mutex
	mailer := &fakeMailer{SendFn: func(_ context.Context, m mail.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 1 {
			shutdown()
			return &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 503, Kind: integrations.Temporary}
		}
		box.add(m)
		return nil
	}}
	c := e.campaigner(mailer, 2)
	camp := e.newCampaign(t, intake.Segment{})
	if err := c.ProcessTask(ctx, campaignTask(camp.ID)); err == nil {
		t.Fatal("the refused run ended without an error to retry on")
	}
	runCampaign(t, c, camp.ID)
	for n := range 4 {
		if got := box.count(fmt.Sprintf("test.testov%d@example.com", n)); got != 1 {
			t.Errorf("person %d got %d copies, want 1", n, got)
		}
	}
}
