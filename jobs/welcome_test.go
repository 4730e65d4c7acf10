package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/redisstore/admission"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/integrations/mail"
	"github.com/paymtech/leadgate/jobs"
	"github.com/paymtech/leadgate/templates"
)

var _ mail.Mailer = (*fakeMailer)(nil)

// fakeMailer is a mail.Mailer whose Send calls SendFn (nil: accept the
// message) and records every message it is given and every one accepted.
type fakeMailer struct {
	SendFn func(ctx context.Context, m mail.Message) error

	mu    sync.Mutex
	tried []mail.Message
	sent  []mail.Message
}

func (f *fakeMailer) Send(ctx context.Context, m mail.Message) error {
	var err error
	if f.SendFn != nil {
		err = f.SendFn(ctx, m)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tried = append(f.tried, m)
	if err == nil {
		f.sent = append(f.sent, m)
	}
	return err
}

// attempts returns how many messages Send was given; delivered, the
// messages it accepted.
func (f *fakeMailer) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tried)
}

func (f *fakeMailer) delivered() []mail.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// welcomeFixture is a Welcomer over a real store in a private Redis and a
// fake mailer, with a fixed clock in Almaty's zone.
type welcomeFixture struct {
	*redisEnv
	mailer *fakeMailer
	w      *jobs.Welcomer
	now    time.Time
}

const (
	welcomeBaseURL = "https://leads.example.com"
	welcomePolicy  = "https://example.com/privacy"
	welcomeTTL     = 7 * 24 * time.Hour
)

var welcomeFrom = mail.Address{Email: "noreply@example.com", Name: "PaymTech"}

func setupWelcome(t *testing.T) *welcomeFixture {
	t.Helper()
	now := time.Date(2025, 3, 14, 9, 30, 0, 0, time.FixedZone("Asia/Almaty", 5*60*60))
	clock := func() time.Time { return now }
	e := setupRedis(t, clock)
	m := &fakeMailer{}
	return &welcomeFixture{redisEnv: e, mailer: m, now: now, w: &jobs.Welcomer{Leads: e.store.Leads, People: e.store.People, Mailer: m,
		From: welcomeFrom, BaseURL: welcomeBaseURL, PolicyURL: welcomePolicy, OptinTTL: welcomeTTL,
		Now: clock, Log: slog.New(slog.DiscardHandler)}}
}

// applicant is one obviously fake submission.
type applicant struct {
	email, phone, lang string
	marketing          bool // the product-news box was ticked
}

// defaultApplicant asks in Kazakh, without the marketing box.
var defaultApplicant = applicant{email: "test1@example.com", phone: "+77010000001", lang: "kk"}

// submit stores a with double opt-in on, as intake does, and returns the
// stored lead.
func (f *welcomeFixture) submit(t *testing.T, a applicant) *intake.Lead {
	t.Helper()
	adm, err := f.store.Leads.Accept(context.Background(), f.application(a))
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if adm.Duplicate {
		t.Fatalf("Accept = %+v, want a new lead", adm)
	}
	return f.get(t, adm.ID)
}

// application is a as intake hands it to the store, with double opt-in on.
func (f *welcomeFixture) application(a applicant) intake.Application {
	meta := intake.Metadata{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
		Browser: "Firefox", OS: "Linux", Timezone: "Asia/Almaty", PageURL: "https://example.com/connect"}
	return intake.Application{
		Submission: &intake.Submission{EntityType: intake.SoleProprietor, Name: "Test Testov", Phone: a.phone,
			Email: a.email, EmailKey: a.email, Products: []string{"acquiring"}, Lang: a.lang,
			ConsentMarketing: a.marketing, PageURL: meta.PageURL, Timezone: meta.Timezone},
		Consent: intake.Consent{Processing: true, Marketing: a.marketing, PolicyVersion: "2025-01",
			PolicyURL: welcomePolicy, GivenAt: f.now.UTC(), IP: meta.IP, UserAgent: meta.UserAgent, PageURL: meta.PageURL},
		Meta:        meta,
		DoubleOptIn: true,
		PerIP:       intake.Limit{N: 100, Per: time.Hour},
		PerEmail:    intake.Limit{N: 100, Per: time.Hour},
	}
}

// mailTask is a lead:ack or lead:optin task as the queue makes it.
func mailTask(kind, id string) *asynq.Task {
	payload, _ := json.Marshal(jobs.AckLead{LeadID: id})
	return asynq.NewTask(kind, payload)
}

func ackTask(id string) *asynq.Task   { return mailTask(jobs.AckLead{}.Kind(), id) }
func optinTask(id string) *asynq.Task { return mailTask(jobs.RequestOptin{}.Kind(), id) }

// mailHandler is one of the Welcomer's two task handlers, with what it
// records when it sends.
type mailHandler struct {
	name    string
	kind    string // the message's Category
	purpose string
	handle  func(f *welcomeFixture) func(context.Context, *asynq.Task) error
	task    func(id string) *asynq.Task
}

var mailHandlers = []mailHandler{
	{"Acknowledge", "ack", jobs.PurposeAck,
		func(f *welcomeFixture) func(context.Context, *asynq.Task) error { return f.w.Acknowledge }, ackTask},
	{"RequestConfirmation", "optin", jobs.PurposeOptin,
		func(f *welcomeFixture) func(context.Context, *asynq.Task) error { return f.w.RequestConfirmation }, optinTask},
}

// checkMailTransfers fails unless the lead's disclosure log holds exactly
// the mail transfers of purposes, at the fixture's time.
func (f *welcomeFixture) checkMailTransfers(t *testing.T, id string, purposes ...string) {
	t.Helper()
	got := f.get(t, id).Transfers
	if len(got) != len(purposes) {
		t.Fatalf("transfers = %+v, want %d to mail", got, len(purposes))
	}
	for i, tr := range got {
		if tr.Recipient != "mail" || tr.Purpose != purposes[i] || !tr.At.Equal(f.now) || tr.At.Location() != time.UTC || tr.Ref != "" {
			t.Errorf("transfer %d = %+v, want {mail %v %q}", i, tr, f.now.UTC(), purposes[i])
		}
	}
}

// checkOneMessage fails unless exactly one message was delivered, and
// returns it.
func (f *welcomeFixture) checkOneMessage(t *testing.T) mail.Message {
	t.Helper()
	sent := f.mailer.delivered()
	if len(sent) != 1 {
		t.Fatalf("mailer delivered %d messages, want 1", len(sent))
	}
	return sent[0]
}

// checkEnvelope fails unless m goes from the configured sender to the
// lead's address alone, tagged with kind and the lead's id.
func checkEnvelope(t *testing.T, m mail.Message, l *intake.Lead, kind string) {
	t.Helper()
	if m.From != welcomeFrom || !slices.Equal(m.To, []mail.Address{{Email: l.Email}}) {
		t.Errorf("message from %+v to %+v, want from %+v to %q", m.From, m.To, welcomeFrom, l.Email)
	}
	if m.Category != kind || m.Ref != l.ID {
		t.Errorf("message category %q ref %q, want %q %q", m.Category, m.Ref, kind, l.ID)
	}
	if m.Headers != nil || m.PerRecipient != nil || m.ASMGroupID != 0 {
		t.Errorf("transactional message has marketing headers: %+v %+v %d", m.Headers, m.PerRecipient, m.ASMGroupID)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("message does not validate: %v", err)
	}
}

func TestMailTaskKindsAreStable(t *testing.T) {
	t.Parallel()
	if got := (jobs.AckLead{}).Kind(); got != "lead:ack" {
		t.Errorf("AckLead kind = %q", got)
	}
	if got := (jobs.RequestOptin{}).Kind(); got != "lead:optin" {
		t.Errorf("RequestOptin kind = %q", got)
	}
}

func TestQueueEnqueuesMailTasks(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	ctx := context.Background()
	for _, tc := range []struct {
		kind    string
		enqueue func(context.Context, string) error
	}{
		{"lead:ack", e.queue.EnqueueAck},
		{"lead:optin", e.queue.EnqueueOptin},
	} {
		for range 2 { // the second is a no-op: the task id is the lead's
			if err := tc.enqueue(ctx, "lead-1"); err != nil {
				t.Fatalf("enqueue %s: %v", tc.kind, err)
			}
		}
		info, err := e.insp.GetTaskInfo(jobs.QueueLeads, tc.kind+":lead-1")
		if err != nil {
			t.Fatalf("GetTaskInfo %s: %v", tc.kind, err)
		}
		if info.Type != tc.kind || string(info.Payload) != `{"lead_id":"lead-1"}` || info.State != asynq.TaskStatePending {
			t.Errorf("%s task = %s %s %v, want the lead id only, pending", tc.kind, info.Type, info.Payload, info.State)
		}
	}
	pending, err := e.insp.ListPendingTasks(jobs.QueueLeads)
	if err != nil {
		t.Fatalf("ListPendingTasks: %v", err)
	}
	if len(pending) != 2 {
		t.Errorf("%d pending tasks, want one per kind", len(pending))
	}
}

func TestWelcomerAcknowledges(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	ctx := context.Background()
	lead := f.submit(t, defaultApplicant)

	if err := f.w.Acknowledge(ctx, ackTask(lead.ID)); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}
	m := f.checkOneMessage(t)
	checkEnvelope(t, m, lead, "ack")
	want, err := templates.RenderAck(templates.AckEmail{Lang: templates.KK, RequestID: lead.ID,
		EntityType: intake.SoleProprietor, Products: []string{"acquiring"}, PolicyURL: welcomePolicy})
	if err != nil {
		t.Fatalf("RenderAck: %v", err)
	}
	if m.Subject != want.Subject || m.Text != want.Text || m.HTML != want.HTML {
		t.Errorf("message = %q\n%s\nwant the Kazakh acknowledgement %q\n%s", m.Subject, m.Text, want.Subject, want.Text)
	}
	f.checkMailTransfers(t, lead.ID, jobs.PurposeAck)

	// The same task again (a redelivery, or a route retry queuing it anew).
	if err := f.w.Acknowledge(ctx, ackTask(lead.ID)); err != nil {
		t.Fatalf("Acknowledge again: %v", err)
	}
	// Another request of the same person the same day.
	second := f.submit(t, applicant{email: defaultApplicant.email, phone: "+77010000002", lang: "ru"})
	if second.Person != lead.Person {
		t.Fatalf("the second lead is another person")
	}
	if err := f.w.Acknowledge(ctx, ackTask(second.ID)); err != nil {
		t.Fatalf("Acknowledge the second lead: %v", err)
	}
	if n := f.mailer.attempts(); n != 1 {
		t.Errorf("mailer was called %d times, want once", n)
	}
	f.checkMailTransfers(t, lead.ID, jobs.PurposeAck)
	f.checkMailTransfers(t, second.ID)
}

func TestWelcomerAcknowledgesOtherPeople(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	ctx := context.Background()
	first := f.submit(t, defaultApplicant)
	other := f.submit(t, applicant{email: "test2@example.com", phone: "+77010000002", lang: "en"})
	for _, l := range []*intake.Lead{first, other} {
		if err := f.w.Acknowledge(ctx, ackTask(l.ID)); err != nil {
			t.Fatalf("Acknowledge: %v", err)
		}
	}
	sent := f.mailer.delivered()
	if len(sent) != 2 {
		t.Fatalf("mailer delivered %d messages, want one per person", len(sent))
	}
	checkEnvelope(t, sent[1], other, "ack")
	want, err := templates.RenderAck(templates.AckEmail{Lang: templates.EN, RequestID: other.ID,
		EntityType: intake.SoleProprietor, Products: []string{"acquiring"}, PolicyURL: welcomePolicy})
	if err != nil {
		t.Fatalf("RenderAck: %v", err)
	}
	if sent[1].Subject != want.Subject || sent[1].Subject == sent[0].Subject {
		t.Errorf("subjects %q, %q: want the second in English, %q", sent[0].Subject, sent[1].Subject, want.Subject)
	}
}

func TestWelcomerSkipsLeadsNotToMail(t *testing.T) {
	t.Parallel()
	for _, h := range mailHandlers {
		for _, tc := range []struct {
			name  string
			state intake.State // "" for a lead that is gone
		}{
			{"held for review", intake.Review},
			{"blocked", intake.Blocked},
			{"gone", ""},
		} {
			t.Run(h.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				f := setupWelcome(t)
				ctx := context.Background()
				lead := f.submit(t, applicant{email: "test1@example.com", phone: "+77010000001", lang: "ru", marketing: true})
				id := lead.ID
				if tc.state == "" {
					id = "01959a3c-8f00-7000-8000-00000000dead"
				} else if _, err := f.store.Leads.Transition(ctx, id, intake.Transition{From: intake.Received, To: tc.state}); err != nil {
					t.Fatalf("Transition: %v", err)
				}
				if err := h.handle(f)(ctx, h.task(id)); err != nil {
					t.Errorf("%s = %v, want nil", h.name, err)
				}
				if n := f.mailer.attempts(); n != 0 {
					t.Errorf("mailer was called %d times, want never", n)
				}
				f.checkMailTransfers(t, lead.ID)
			})
		}
	}
}

func TestWelcomerMalformedPayload(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	for _, h := range mailHandlers {
		for _, payload := range []string{`not json`, `{}`, `{"lead_id":""}`} {
			err := h.handle(f)(context.Background(), asynq.NewTask(h.task("x").Type(), []byte(payload)))
			if !errors.Is(err, asynq.SkipRetry) {
				t.Errorf("%s(%s) = %v, want SkipRetry", h.name, payload, err)
			}
		}
	}
	if n := f.mailer.attempts(); n != 0 {
		t.Errorf("mailer was called %d times, want never", n)
	}
}

func TestWelcomerRetriesTemporaryMailFailures(t *testing.T) {
	t.Parallel()
	for _, h := range mailHandlers {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			f := setupWelcome(t)
			ctx := context.Background()
			down := &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 503, Kind: integrations.Temporary}
			f.mailer.SendFn = func(context.Context, mail.Message) error { return down }
			a := applicant{email: "test1@example.com", phone: "+77010000001", lang: "ru", marketing: true}
			lead := f.submit(t, a)

			err := h.handle(f)(ctx, h.task(lead.ID))
			if !errors.Is(err, down) || errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("%s = %v, want the mailer's error, retried", h.name, err)
			}
			assertNoPII(t, err, lead)
			f.checkMailTransfers(t, lead.ID)

			// Meanwhile another request of the same person: the failed
			// lead keeps the claim, so it is not mailed twice.
			f.mailer.SendFn = nil
			a.phone = "+77010000002"
			second := f.submit(t, a)
			if err := h.handle(f)(ctx, h.task(second.ID)); err != nil {
				t.Fatalf("%s of the second lead: %v", h.name, err)
			}
			if n := f.mailer.attempts(); n != 1 {
				t.Fatalf("mailer was called %d times, want once", n)
			}

			// The retry sends.
			if err := h.handle(f)(ctx, h.task(lead.ID)); err != nil {
				t.Fatalf("%s retried: %v", h.name, err)
			}
			checkEnvelope(t, f.checkOneMessage(t), lead, h.kind)
			f.checkMailTransfers(t, lead.ID, h.purpose)
			f.checkMailTransfers(t, second.ID)
		})
	}
}

func TestWelcomerGivesUpOnPermanentMailFailures(t *testing.T) {
	t.Parallel()
	for _, h := range mailHandlers {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			f := setupWelcome(t)
			refused := &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 400, Kind: integrations.Permanent}
			f.mailer.SendFn = func(context.Context, mail.Message) error { return refused }
			lead := f.submit(t, applicant{email: "test1@example.com", phone: "+77010000001", lang: "ru", marketing: true})

			err := h.handle(f)(context.Background(), h.task(lead.ID))
			if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, refused) {
				t.Fatalf("%s = %v, want the mailer's error and SkipRetry", h.name, err)
			}
			assertNoPII(t, err, lead)
			if n := f.mailer.attempts(); n != 1 {
				t.Errorf("mailer was called %d times, want once", n)
			}
			f.checkMailTransfers(t, lead.ID)
			// A route retry replaces the archived task: the refusal stands.
			h.handle(f)(context.Background(), h.task(lead.ID))
			if n := f.mailer.attempts(); n != 1 {
				t.Errorf("a requeued task tried a refused address again (%d attempts)", n)
			}
		})
	}
}

// A route retry or a redrive days later, past the send window, must not mail
// the same lead again: its disclosure log says it was sent.
func TestWelcomerNeverMailsALeadTwice(t *testing.T) {
	t.Parallel()
	for _, h := range mailHandlers {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			f := setupWelcome(t)
			lead := f.submit(t, applicant{email: "test1@example.com", phone: "+77010000001", lang: "ru", marketing: true})
			if err := h.handle(f)(context.Background(), h.task(lead.ID)); err != nil {
				t.Fatal(err)
			}
			keys, _ := f.rdb.Keys(context.Background(), "lg:sent:*").Result()
			f.rdb.Del(context.Background(), keys...) // the window has passed
			if err := h.handle(f)(context.Background(), h.task(lead.ID)); err != nil {
				t.Fatal(err)
			}
			if n := f.mailer.attempts(); n != 1 {
				t.Errorf("the same lead was mailed %d times, want once", n)
			}
		})
	}
}

// confirmLink finds the opt-in link in a text body.
var confirmLink = regexp.MustCompile(regexp.QuoteMeta(welcomeBaseURL+"/v1/optin/confirm?") + `\S+`)

func TestWelcomerRequestsConfirmation(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	ctx := context.Background()
	lead := f.submit(t, applicant{email: "test1@example.com", phone: "+77010000001", lang: "en", marketing: true})

	// The acknowledgement and the opt-in request are claimed apart: one
	// does not stop the other.
	if err := f.w.Acknowledge(ctx, ackTask(lead.ID)); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}
	if err := f.w.RequestConfirmation(ctx, optinTask(lead.ID)); err != nil {
		t.Fatalf("RequestConfirmation: %v", err)
	}
	sent := f.mailer.delivered()
	if len(sent) != 2 {
		t.Fatalf("mailer delivered %d messages, want an acknowledgement and an opt-in request", len(sent))
	}
	m := sent[1]
	checkEnvelope(t, m, lead, "optin")

	link := confirmLink.FindString(m.Text)
	if link == "" {
		t.Fatalf("text has no %s/v1/optin/confirm? link:\n%s", welcomeBaseURL, m.Text)
	}
	if !strings.Contains(m.HTML, welcomeBaseURL+"/v1/optin/confirm?") {
		t.Errorf("HTML has no confirmation link:\n%s", m.HTML)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("link: %v", err)
	}
	q := u.Query()
	token := q.Get("token")
	if want := f.store.People.OptinToken(lead.Person, f.now.Add(welcomeTTL)); token != want {
		t.Errorf("token = %q, want the person's, valid for the TTL: %q", token, want)
	}
	if q.Get("lang") != "en" || len(q) != 2 {
		t.Errorf("link query = %v, want the token and lang=en", q)
	}
	if !strings.Contains(m.HTML, token) {
		t.Errorf("HTML does not carry the token")
	}
	if strings.Contains(link, "test1") {
		t.Errorf("link %q carries the address", link)
	}
	want, err := templates.RenderOptin(templates.OptinEmail{Lang: templates.EN, ConfirmURL: link,
		ValidFor: welcomeTTL, PolicyURL: welcomePolicy})
	if err != nil {
		t.Fatalf("RenderOptin: %v", err)
	}
	if m.Subject != want.Subject || m.Text != want.Text || m.HTML != want.HTML {
		t.Errorf("message = %q\n%s\nwant the English opt-in request %q\n%s", m.Subject, m.Text, want.Subject, want.Text)
	}
	f.checkMailTransfers(t, lead.ID, jobs.PurposeAck, jobs.PurposeOptin)

	if err := f.w.RequestConfirmation(ctx, optinTask(lead.ID)); err != nil {
		t.Fatalf("RequestConfirmation again: %v", err)
	}
	if n := f.mailer.attempts(); n != 2 {
		t.Errorf("mailer was called %d times, want twice", n)
	}
}

func TestWelcomerRequestsConfirmationOnlyWhilePending(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		marketing bool   // the lead's box
		state     string // the person's "marketing" field; "-" removes it
	}{
		{"already confirmed", true, intake.MarketingActive},
		{"withdrawn", true, intake.MarketingWithdrawn},
		{"no opt-in left (purged)", true, "-"},
		{"box not ticked", false, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setupWelcome(t)
			ctx := context.Background()
			lead := f.submit(t, applicant{email: "test1@example.com", phone: "+77010000001", lang: "ru", marketing: tc.marketing})
			key := "lg:person:" + lead.Person
			if tc.state == "-" {
				if err := f.rdb.HDel(ctx, key, "marketing").Err(); err != nil {
					t.Fatalf("HDEL: %v", err)
				}
			} else if err := f.rdb.HSet(ctx, key, "marketing", tc.state).Err(); err != nil {
				t.Fatalf("HSET: %v", err)
			}
			if err := f.w.RequestConfirmation(ctx, optinTask(lead.ID)); err != nil {
				t.Errorf("RequestConfirmation = %v, want nil", err)
			}
			if n := f.mailer.attempts(); n != 0 {
				t.Errorf("mailer was called %d times, want never", n)
			}
			f.checkMailTransfers(t, lead.ID)
		})
	}
}

func TestRouterWelcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(l *intake.Lead)
		refuse bool     // the CRM refuses the lead for good
		want   []string // calls, in order
	}{
		{"a lead that passes the risk check", func(*intake.Lead) {}, false,
			[]string{"welcome", "push", "transition to routed with the opt-in"}},
		{"a lead the CRM refuses", func(*intake.Lead) {}, true,
			[]string{"welcome", "push", "transition to failed with the opt-in"}},
		{"a lead held for review", makeRisky, false, []string{"transition to review"}},
		{"a lead released from review", func(l *intake.Lead) { makeRisky(l); l.Released = true }, false,
			[]string{"welcome", "push", "transition to routed with the opt-in"}},
		{"a lead already routed", func(l *intake.Lead) { l.State = intake.Routed }, false, nil},
		{"a blocked lead", func(l *intake.Lead) { l.State = intake.Blocked }, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			tc.change(f.lead)
			var calls []string
			f.router.Welcome = func(_ context.Context, l *intake.Lead) error {
				if l.ID != f.lead.ID {
					t.Errorf("Welcome got lead %q, want the task's", l.ID)
				}
				calls = append(calls, "welcome")
				return nil
			}
			f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
				calls = append(calls, "push")
				if tc.refuse {
					return crm.Receipt{}, &integrations.Error{System: "webhook", Op: "push", Status: 422, Kind: integrations.Permanent}
				}
				return crm.Receipt{System: "webhook", Ref: "wh-42"}, nil
			}
			f.leads.TransitionFn = func(_ context.Context, _ string, tr intake.Transition) (intake.State, error) {
				call := "transition to " + string(tr.To)
				if tr.QueueOptin {
					call += " with the opt-in"
				}
				calls = append(calls, call)
				return tr.To, nil
			}
			if err := f.router.ProcessTask(context.Background(), f.task()); (err != nil) != tc.refuse {
				t.Fatalf("ProcessTask: %v", err)
			}
			if !reflect.DeepEqual(calls, tc.want) {
				t.Errorf("calls = %q, want %q", calls, tc.want)
			}
		})
	}
}

// claimDown fails ClaimSend as a Redis outage would.
type claimDown struct{ jobs.PersonMail }

func (claimDown) ClaimSend(context.Context, string, string, string, time.Duration) (bool, error) {
	return false, intake.Unavailable("claim send", errors.New("connection refused"))
}

// The routing task acknowledges the lead itself. When the provider fails,
// the acknowledgement is queued as a task, and the next leads' are queued
// without trying until the pause is over; then one routing task tries
// while the others keep queuing. A refusal for good is not queued (a task
// would fare no better), and a Redis failure queues without a pause. Only
// the provider's answer to a try — the mail taken, or refused for good —
// ends a pause, not a try that had nothing to send.
func TestAcknowledgeFirst(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	ctx := context.Background()
	now := f.now
	f.w.Now = func() time.Time { return now }
	var queued []string
	f.w.QueueAck = func(_ context.Context, id string) error {
		queued = append(queued, id)
		return nil
	}
	people := 0
	submit := func() *intake.Lead {
		people++
		return f.submit(t, applicant{email: fmt.Sprintf("test%d@example.com", people), phone: fmt.Sprintf("+770100000%02d", people), lang: "ru"})
	}
	ack := func() *intake.Lead {
		t.Helper()
		l := submit()
		if err := f.w.AcknowledgeFirst(ctx, l); err != nil {
			t.Fatalf("AcknowledgeFirst: %v", err)
		}
		return l
	}
	check := func(what string, wantQueued, wantAttempts int) {
		t.Helper()
		if len(queued) != wantQueued || f.mailer.attempts() != wantAttempts {
			t.Fatalf("%s: %d queued after %d attempts, want %d after %d", what, len(queued), f.mailer.attempts(), wantQueued, wantAttempts)
		}
	}
	sent := ack()
	check("sent by routing", 0, 1)
	f.checkMailTransfers(t, sent.ID, jobs.PurposeAck)

	unavailable := &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 503, Kind: integrations.Temporary}
	providerDown := func(context.Context, mail.Message) error { return unavailable }
	refuse := func(context.Context, mail.Message) error {
		return &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 400, Kind: integrations.Permanent}
	}
	f.mailer.SendFn = providerDown
	down := ack()
	check("the provider down", 1, 2)
	ack()
	check("paused", 2, 2)
	// A run for a lead whose acknowledgement is logged as sent (a routing
	// retry after the CRM failed) neither mails nor queues a task.
	if err := f.w.AcknowledgeFirst(ctx, f.get(t, sent.ID)); err != nil {
		t.Fatalf("AcknowledgeFirst of a lead acknowledged: %v", err)
	}
	check("acknowledged already", 2, 2)
	if err := f.w.Acknowledge(ctx, ackTask(down.ID)); !errors.Is(err, unavailable) {
		t.Errorf("the queued task while the provider is down: %v, want its error, retried", err)
	}
	f.mailer.SendFn = nil
	if err := f.w.Acknowledge(ctx, ackTask(down.ID)); err != nil || f.sentOf("ack", down.ID) != 1 {
		t.Errorf("the queued task: %v, %d acknowledgements; want one sent", err, f.sentOf("ack", down.ID))
	}
	check("the task", 2, 4)

	now = now.Add(31 * time.Second) // the pause is over: one routing task tries, the others still queue
	var meanwhile *intake.Lead
	f.mailer.SendFn = func(context.Context, mail.Message) error {
		if meanwhile == nil {
			meanwhile = ack()
		}
		return nil
	}
	probe := ack()
	check("the probe", 3, 5)
	if f.sentOf("ack", probe.ID) != 1 || queued[2] != meanwhile.ID {
		t.Errorf("probe sent %d, queued %q; want the probe sent and the lead meanwhile queued", f.sentOf("ack", probe.ID), queued)
	}
	f.mailer.SendFn = nil
	ack()
	check("after the probe", 3, 6)

	f.mailer.SendFn = refuse
	refused := ack()
	check("refused for good", 3, 7)
	if n := f.sentOf("ack", refused.ID); n != 0 {
		t.Errorf("%d acknowledgements of the refused lead, want 0", n)
	}
	f.mailer.SendFn = nil
	ack()
	check("no pause after a refusal", 3, 8)

	store := f.w.People
	f.w.People = claimDown{store}
	ack()
	check("Redis down", 4, 8)
	f.w.People = store
	ack()
	check("no pause after Redis", 4, 9)

	f.mailer.SendFn = providerDown
	earlier := ack()
	check("the provider down again", 5, 10)
	f.mailer.SendFn = nil
	if err := f.w.Acknowledge(ctx, ackTask(earlier.ID)); err != nil {
		t.Fatalf("the queued task: %v", err)
	}
	check("its task", 5, 11)
	now = now.Add(31 * time.Second) // the pause is over: the next try is a lead of the same person, whose claim is taken
	repeat := f.submit(t, applicant{email: earlier.Email, phone: "+77010000099", lang: "ru"})
	if err := f.w.AcknowledgeFirst(ctx, repeat); err != nil {
		t.Fatalf("AcknowledgeFirst of the person's second lead: %v", err)
	}
	check("a try with nothing to send", 5, 11)
	ack()
	check("still paused", 6, 11)
	now = now.Add(31 * time.Second)
	f.mailer.SendFn = refuse
	ack()
	check("a try refused for good", 6, 12)
	f.mailer.SendFn = nil
	ack()
	check("no pause after the provider answered", 6, 13)
}

// ackMarks counts the AckQueued calls.
type ackMarks struct {
	jobs.PersonMail
	n int
}

func (m *ackMarks) AckQueued(ctx context.Context, lead string) error {
	m.n++
	return m.PersonMail.AckQueued(ctx, lead)
}

// A routing run that finds the lead's acknowledgement queued by an earlier
// run only queues it again, even as a first run (requeued after its worker
// died, or redriven): the lead:ack task may still be retrying, and both
// would pass the send claim. The lead is marked before the task is
// queued, once; a lead erased meanwhile gets no task.
func TestAcknowledgeFirstLeavesAQueuedAckToItsTask(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	ctx := context.Background()
	now := f.now
	f.w.Now = func() time.Time { return now }
	marks := &ackMarks{PersonMail: f.store.People}
	f.w.People = marks
	var queued []string
	f.w.QueueAck = func(_ context.Context, id string) error {
		if !f.get(t, id).AckQueued {
			t.Errorf("the acknowledgement was queued before the lead was marked")
		}
		queued = append(queued, id)
		return nil
	}
	f.mailer.SendFn = func(context.Context, mail.Message) error {
		return &integrations.Error{System: "sendgrid", Op: "mail.send", Status: 503, Kind: integrations.Temporary}
	}
	lead := f.submit(t, defaultApplicant)
	if err := f.w.AcknowledgeFirst(ctx, lead); err != nil {
		t.Fatalf("AcknowledgeFirst: %v", err)
	}
	gone := *lead // paused: queued without trying, were it not gone
	gone.ID = "01959a3c-8f00-7000-8000-00000000dead"
	if err := f.w.AcknowledgeFirst(ctx, &gone); err != nil {
		t.Fatalf("AcknowledgeFirst of a lead gone: %v", err)
	}

	f.mailer.SendFn = nil
	now = now.Add(31 * time.Second) // the provider back and the pause over: a new lead would be tried
	if err := f.w.AcknowledgeFirst(ctx, f.get(t, lead.ID)); err != nil {
		t.Fatalf("AcknowledgeFirst requeued: %v", err)
	}
	if n := f.mailer.attempts(); n != 1 {
		t.Errorf("mailer was called %d times, want once: the requeued run tried beside the task", n)
	}
	if !slices.Equal(queued, []string{lead.ID, lead.ID}) || marks.n != 2 {
		t.Errorf("queued %q after %d marks; want the lead queued twice and marked once, the lead gone not queued (its mark tried)", queued, marks.n)
	}
}

// optinTasks counts the lead:optin tasks run for each lead: the handler
// asks AsksLink first, whatever the lead.
type optinTasks struct {
	jobs.PersonMail
	mu  sync.Mutex
	ran map[string]int
}

func (o *optinTasks) AsksLink(ctx context.Context, lead string) (bool, error) {
	o.mu.Lock()
	o.ran[lead]++
	o.mu.Unlock()
	return o.PersonMail.AsksLink(ctx, lead)
}

func (o *optinTasks) count(lead string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ran[lead]
}

// startWorker runs what a worker process runs for a new lead over f: the
// admission drain, the router (to c, acknowledging the lead itself) and
// the welcome mail's handlers. It returns the count of opt-in tasks.
func (f *welcomeFixture) startWorker(t *testing.T, c jobs.CRM) *optinTasks {
	t.Helper()
	optins := &optinTasks{PersonMail: f.store.People, ran: map[string]int{}}
	f.w.People = optins
	r := f.router(c)
	f.w.QueueAck = f.queue.EnqueueAck
	r.Welcome = f.w.AcknowledgeFirst
	r.Now = func() time.Time { return f.now }
	f.serveHandlers(t, jobs.Handlers{Router: r, Welcomer: f.w})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	d := &jobs.Drain{Stream: admission.New(f.rdb, "test"), Queue: f.queue, Log: slog.New(slog.DiscardHandler), Block: 50 * time.Millisecond}
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	t.Cleanup(func() { stop(); <-done })
	return optins
}

// waitIdle waits until the admission stream is empty and the leads queue
// holds nothing pending, running, scheduled or retrying — read in one
// MULTI, so at one instant. Read one after the other they can both be
// empty with work left: the queue read while a routing task's entry sat
// in the stream, the stream read after the drain had moved that entry
// into the queue. The keys are asynq's own (internal/base, as of v0.26);
// a task moves between them inside one script.
func (f *welcomeFixture) waitIdle(t *testing.T) {
	t.Helper()
	prefix := "asynq:{" + jobs.QueueLeads + "}:"
	waitFor(t, "the worker to finish", func() bool {
		ctx := context.Background()
		var counts []*redis.IntCmd
		_, err := f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			counts = []*redis.IntCmd{p.XLen(ctx, redisstore.AdmissionStream),
				p.LLen(ctx, prefix+"pending"), p.LLen(ctx, prefix+"active"),
				p.ZCard(ctx, prefix+"scheduled"), p.ZCard(ctx, prefix+"retry")}
			return nil
		})
		if err != nil {
			return false
		}
		for _, c := range counts {
			if c.Val() != 0 {
				return false
			}
		}
		return true
	})
}

// sentOf counts the messages of kind delivered to the lead.
func (f *welcomeFixture) sentOf(kind, lead string) int {
	n := 0
	for _, m := range f.mailer.delivered() {
		if m.Category == kind && m.Ref == lead {
			n++
		}
	}
	return n
}

// Every routed lead is acknowledged; only one that asks for a link gets an
// opt-in task, and its request once.
func TestRouterQueuesTheOptinOnlyForLeadsThatAsk(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	asks := f.submit(t, applicant{email: "test1@example.com", phone: "+77010000001", lang: "ru", marketing: true})
	plain := f.submit(t, applicant{email: "test2@example.com", phone: "+77010000002", lang: "ru"})
	optins := f.startWorker(t, newScriptedCRM())
	waitFor(t, "both leads routed", func() bool {
		return f.get(t, asks.ID).State == intake.Routed && f.get(t, plain.ID).State == intake.Routed
	})
	f.waitIdle(t)
	for _, tc := range []struct {
		lead       *intake.Lead
		optinTasks int
	}{{asks, 1}, {plain, 0}} {
		if n := f.sentOf("ack", tc.lead.ID); n != 1 {
			t.Errorf("%d acknowledgements, want 1", n)
		}
		if n := f.sentOf("optin", tc.lead.ID); n != tc.optinTasks {
			t.Errorf("%d opt-in requests, want %d", n, tc.optinTasks)
		}
		if n := optins.count(tc.lead.ID); n != tc.optinTasks {
			t.Errorf("%d opt-in tasks, want %d", n, tc.optinTasks)
		}
	}
}

// A CRM that is down holds the lead back, not the person's confirmation
// link: the opt-in request goes out with the first push attempt (an
// unconfirmed opt-in expires UNCONFIRMED_OPTIN_TTL after the request, and
// the retries may take RETRY_MAX_AGE).
func TestRouterMailsTheOptinWhileTheCRMIsDown(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	lead := f.submit(t, applicant{email: "test1@example.com", phone: "+77010000001", lang: "ru", marketing: true})
	c := newScriptedCRM()
	c.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
		return crm.Receipt{}, &integrations.Error{System: "crm", Op: "push", Status: 503, Kind: integrations.Temporary}
	}
	optins := f.startWorker(t, c)
	// The acknowledgement (sent by the routing task) and the opt-in request
	// (a task of its own) may be mailed in either order.
	waitFor(t, "the acknowledgement and the opt-in request mailed", func() bool {
		return f.sentOf("ack", lead.ID) >= 1 && f.sentOf("optin", lead.ID) >= 1
	})
	if st := f.get(t, lead.ID).State; st != intake.Received {
		t.Errorf("lead %s, want still received (the CRM refuses it)", st)
	}
	if n := f.sentOf("ack", lead.ID); n != 1 {
		t.Errorf("%d acknowledgements, want 1", n)
	}
	if n := f.sentOf("optin", lead.ID); n != 1 {
		t.Errorf("%d opt-in requests, want 1", n)
	}
	if n := optins.count(lead.ID); n != 1 {
		t.Errorf("%d opt-in tasks, want 1 however often the push is retried", n)
	}
}

// A repeat that ticks the box while the route task runs (after it read the
// lead, before the lead is routed) queues no opt-in itself, the lead being
// still received: the move to routed does.
func TestRouterQueuesTheOptinARepeatAddsDuringTheRoute(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	a := applicant{email: "test1@example.com", phone: "+77010000001", lang: "ru"}
	lead := f.submit(t, a)
	c := newScriptedCRM()
	push := c.PushFn
	var once sync.Once
	c.PushFn = func(ctx context.Context, l crm.Lead) (crm.Receipt, error) {
		once.Do(func() {
			a.marketing = true
			if adm, err := f.store.Leads.Accept(ctx, f.application(a)); err != nil || !adm.Duplicate || adm.ID != lead.ID {
				t.Errorf("repeat = %+v, %v; want a duplicate of the lead", adm, err)
			}
		})
		return push(ctx, l)
	}
	optins := f.startWorker(t, c)
	waitFor(t, "the lead routed", f.inState(t, lead.ID, intake.Routed))
	f.waitIdle(t)
	if n := f.sentOf("optin", lead.ID); n != 1 {
		t.Errorf("%d opt-in requests, want 1", n)
	}
	if n := optins.count(lead.ID); n != 1 {
		t.Errorf("%d opt-in tasks, want 1", n)
	}
	if n := f.sentOf("ack", lead.ID); n != 1 {
		t.Errorf("%d acknowledgements, want 1", n)
	}
}

func TestRouterRetriesWhenTheWelcomeIsNotQueued(t *testing.T) {
	t.Parallel()
	f := setup(t)
	errQueue := errors.New("queue unavailable")
	f.router.Welcome = func(context.Context, *intake.Lead) error { return errQueue }
	var calls []string
	f.crm.PushFn = func(context.Context, crm.Lead) (crm.Receipt, error) {
		calls = append(calls, "push")
		return crm.Receipt{System: "webhook", Ref: "wh-42"}, nil
	}
	f.leads.TransitionFn = func(_ context.Context, _ string, tr intake.Transition) (intake.State, error) {
		calls = append(calls, "transition to "+string(tr.To))
		return tr.To, nil
	}
	err := f.router.ProcessTask(context.Background(), f.task())
	if !errors.Is(err, errQueue) || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask = %v, want the queue's error, retried", err)
	}
	if calls != nil {
		t.Errorf("calls = %q, want nothing pushed or recorded", calls)
	}
}

// flakyRecords fails the first call of the records written after a mail is
// sent — LinkSent, and SentTo with the transfer — as a Redis blip would.
type flakyRecords struct {
	jobs.PersonMail
	failed sync.Map // which of them already failed once
}

func (f *flakyRecords) blip(what string) error {
	if _, again := f.failed.LoadOrStore(what, true); again {
		return nil
	}
	return intake.Unavailable(what, errors.New("connection reset"))
}

func (f *flakyRecords) LinkSent(ctx context.Context, person, lead string, expires time.Time) error {
	if err := f.blip("link sent"); err != nil {
		return err
	}
	return f.PersonMail.LinkSent(ctx, person, lead, expires)
}

func (f *flakyRecords) SentTo(ctx context.Context, kind, person, lead string, t *intake.Transfer) error {
	if err := f.blip("sent " + kind); err != nil {
		return err
	}
	return f.PersonMail.SentTo(ctx, kind, person, lead, t)
}

// A Redis blip after the mail went out neither fails the task nor, on its
// retry, mails the person again: the records wait for Redis.
func TestWelcomerRecordsASentMailThroughABlip(t *testing.T) {
	t.Parallel()
	f := setupWelcome(t)
	ctx := context.Background()
	flaky := &flakyRecords{PersonMail: f.store.People}
	f.w.People = flaky
	lead := f.submit(t, applicant{email: "test1@example.com", phone: "+77010000001", lang: "en", marketing: true})

	for range 2 { // the task, then its redelivery
		if err := f.w.Acknowledge(ctx, ackTask(lead.ID)); err != nil {
			t.Fatalf("Acknowledge: %v", err)
		}
		if err := f.w.RequestConfirmation(ctx, optinTask(lead.ID)); err != nil {
			t.Fatalf("RequestConfirmation: %v", err)
		}
	}
	if n := f.mailer.attempts(); n != 2 {
		t.Errorf("mailer was called %d times, want an acknowledgement and an opt-in request once each", n)
	}
	f.checkMailTransfers(t, lead.ID, jobs.PurposeAck, jobs.PurposeOptin)
}
