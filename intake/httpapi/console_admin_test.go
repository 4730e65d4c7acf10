package httpapi

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/httpapi/console"
	"github.com/paymtech/leadgate/templates"
)

// The admin's console pages over the real route table: breach notices
// (compose, confirm, send, progress), the audit log with its filters and
// paging, and the queues with the retry of a failed task — a lead:route
// one through its lead's redrive. TestConsoleRoutesByRole covers who may
// open them.

// fakeTasks is asynq's queues as the console sees them (console.Tasks):
// the failed tasks a test puts in, and what the console ran or deleted.
type fakeTasks struct {
	mu           sync.Mutex
	tasks        map[string]*console.Task // by id
	ran, deleted []string
}

var _ console.Tasks = (*fakeTasks)(nil)

func (f *fakeTasks) Sizes() ([]console.QueueSize, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sizes := []console.QueueSize{{Queue: "leads"}, {Queue: "mail"}, {Queue: "maintenance"}}
	for _, t := range f.tasks {
		for i := range sizes {
			if sizes[i].Queue != t.Queue {
				continue
			}
			switch t.State {
			case console.TaskRetry:
				sizes[i].Retry++
			case console.TaskArchived:
				sizes[i].Archived++
			default:
				sizes[i].Pending++
			}
		}
	}
	return sizes, nil
}

func (f *fakeTasks) Failed(queue string, limit int) ([]console.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []console.Task
	for _, t := range f.tasks {
		if t.Queue == queue && (t.State == console.TaskRetry || t.State == console.TaskArchived) && len(out) < limit {
			out = append(out, *t)
		}
	}
	return out, nil
}

func (f *fakeTasks) Task(queue, id string) (*console.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok || t.Queue != queue {
		return nil, &intake.Error{Code: intake.ENotFound, Message: "no such task"}
	}
	c := *t
	return &c, nil
}

func (f *fakeTasks) Run(queue, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, id)
	f.tasks[id].State = "pending"
	return nil
}

func (f *fakeTasks) Delete(queue, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, id)
	delete(f.tasks, id)
	return nil
}

// add puts a failed task in and returns it.
func (f *fakeTasks) add(t console.Task) console.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[t.ID] = &t
	return t
}

func (f *fakeTasks) did() (ran, deleted []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ran), slices.Clone(f.deleted)
}

// failedCampaignTask adds an archived campaign:send task (not a lead's)
// and returns it.
func failedCampaignTask(f httpFixture) console.Task {
	id := uuid.NewString()
	return f.tasks.add(console.Task{Queue: "mail", ID: "campaign:send:" + id, Type: "campaign:send", State: console.TaskArchived,
		CampaignID: id, Error: "sendgrid: send: 500", FailedAt: time.Now(), Retried: 50, MaxRetry: 50})
}

// failedRouteTask adds the archived lead:route task of lead id.
func failedRouteTask(f httpFixture, id string) console.Task {
	return f.tasks.add(console.Task{Queue: "leads", ID: "lead:route:" + id, Type: "lead:route", State: console.TaskArchived,
		LeadID: id, Error: "webhook: push: 400", FailedAt: time.Now(), Retried: 0, MaxRetry: 500})
}

// sentNotice stores a breach notice to everyone and returns its id.
func sentNotice(t *testing.T, f httpFixture) string {
	t.Helper()
	id, err := f.store.Campaigns.CreateCampaign(context.Background(), &intake.Campaign{Kind: intake.KindBreachNotice, All: true,
		By: "a", Content: intake.Content{Message: map[string]string{"ru": "Тестовое уведомление"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// retryPath is the retry button's action for t.
func retryPath(t console.Task) string {
	return "/admin/queues/" + t.Queue + "/tasks/" + url.PathEscape(t.ID) + "/retry"
}

// validNoticeForm is a breach notice's form that passes the API's checks:
// to fakePerson and another fake address, in Russian and Kazakh, sent.
func validNoticeForm() url.Values {
	return url.Values{"audience": {"list"}, "emails": {"Test.Person@Example.com\ntest2@example.com"},
		"message_ru": {"Тестовое уведомление: возможна утечка данных."}, "message_kk": {"Тест хабарлама: деректер жылыстауы мүмкін."},
		"action": {"send"}}
}

var noticePage = regexp.MustCompile(`^/admin/breach-notices/([0-9a-f-]{36})\?`)

// TestConsoleBreachNotice: admin composes a notice to a list of
// addresses, checks it on the confirmation step (nothing stored yet), goes
// back to edit, sends it; the notice is the API's — kind, the people
// listed, the holder's name — and its page and the list show it. The
// addresses never reach a URL.
func TestConsoleBreachNotice(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	ctx := context.Background()
	if _, err := f.store.Leads.Accept(ctx, application(fakePerson())); err != nil {
		t.Fatal(err)
	}
	cookie, _ := signIn(t, f.url, adminToken)
	form := validNoticeForm()
	form.Set("csrf", csrfOf(t, f.url, cookie))

	form.Set("action", "review")
	resp, body := consoleDo(t, "POST", f.url+"/admin/breach-notices?lang=en", cookie, form, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="confirm-audience"`) ||
		!strings.Contains(body, html.EscapeString(templates.Message(templates.EN, "console.admin.notice.confirm_list", 2))) || !strings.Contains(body, `name="action" value="send"`) {
		t.Fatalf("review: %d, want 200 with the confirmation of 2 addresses and a send button", resp.StatusCode)
	}
	for _, hidden := range []string{`type="hidden" name="audience" value="list"`, `type="hidden" name="message_kk" value="Тест хабарлама`} {
		if !strings.Contains(body, hidden) {
			t.Errorf("the confirmation does not carry %s", hidden)
		}
	}
	form.Set("action", "edit")
	if resp, body := consoleDo(t, "POST", f.url+"/admin/breach-notices?lang=en", cookie, form, nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `<textarea id="emails" name="emails"`) || !strings.Contains(body, "test2@example.com</textarea>") {
		t.Errorf("edit: %d, want 200 with the form as typed", resp.StatusCode)
	}
	if n := len(f.queue.campaigns); n != 0 {
		t.Fatalf("review and edit queued %d notices", n)
	}

	form.Set("action", "send")
	resp, _ = consoleDo(t, "POST", f.url+"/admin/breach-notices?lang=en", cookie, form, nil)
	loc := resp.Header.Get("Location")
	m := noticePage.FindStringSubmatch(loc)
	if resp.StatusCode != http.StatusSeeOther || m == nil || holdsPersonal(loc) {
		t.Fatalf("send: %d to %q, want 303 to the notice's page", resp.StatusCode, loc)
	}
	id := m[1]
	if !slices.Contains(f.queue.campaigns, id) {
		t.Error("the notice was not queued")
	}
	cp, err := f.store.Campaigns.Campaign(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Kind != intake.KindBreachNotice || cp.All || cp.By != "a" || len(cp.Content.Message) != 2 {
		t.Errorf("stored %s all=%v by %q with %d messages; want a breach notice to a list by a in 2 languages",
			cp.Kind, cp.All, cp.By, len(cp.Content.Message))
	}
	if n, err := f.rdb.ZCard(ctx, campaignKey(id)+keyCampaignTo).Result(); err != nil || n != 2 {
		t.Errorf("the notice names %d people (%v), want 2", n, err)
	}
	resp, body = consoleDo(t, "GET", f.url+loc, cookie, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="campaign-state"`) ||
		!strings.Contains(body, "The breach notice is queued for sending.") {
		t.Errorf("the notice's page: %d, want 200 with its progress and the notice", resp.StatusCode)
	}
	if _, body := consoleDo(t, "GET", f.url+"/admin/breach-notices?lang=en", cookie, nil, nil); !strings.Contains(body, "/admin/breach-notices/"+id) {
		t.Error("the list does not link the notice")
	}
	// A campaign's id is no notice.
	if resp, _ := consoleDo(t, "GET", f.url+"/admin/breach-notices/"+queuedCampaign(t, f), cookie, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a campaign opened as a notice: %d, want 404", resp.StatusCode)
	}
}

// TestConsoleBreachNoticeRefused: a form the API's checks refuse comes
// back (422) with the problem beside its field; nothing is queued.
func TestConsoleBreachNoticeRefused(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	cookie, _ := signIn(t, f.url, adminToken)
	csrf := csrfOf(t, f.url, cookie)
	for _, tc := range []struct {
		name, want string
		edit       func(url.Values)
	}{
		{"not an address", "This is not one email address: not-an-address", func(v url.Values) { v.Set("emails", "test2@example.com, not-an-address") }},
		{"an empty list", "Enter at least one address", func(v url.Values) { v.Set("emails", " \n ") }},
		{"no message", "Write the message in at least one language.", func(v url.Values) { v.Del("message_ru"); v.Set("message_kk", " ") }},
	} {
		form := validNoticeForm()
		form.Set("csrf", csrf)
		tc.edit(form)
		resp, body := consoleDo(t, "POST", f.url+"/admin/breach-notices?lang=en", cookie, form, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tc.want) || !strings.Contains(body, `role="alert"`) {
			t.Errorf("%s: %d, want 422 saying %q", tc.name, resp.StatusCode, tc.want)
		}
	}
	// Everyone: no list needed.
	form := validNoticeForm()
	form.Set("csrf", csrf)
	form.Set("audience", "all")
	form.Set("emails", "")
	if resp, _ := consoleDo(t, "POST", f.url+"/admin/breach-notices?lang=en", cookie, form, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a notice to everyone: %d, want 303", resp.StatusCode)
	}
	if n := len(f.queue.campaigns); n != 1 {
		t.Errorf("%d notices queued, want only the one to everyone", n)
	}
}

var auditRows = regexp.MustCompile(`<tr><td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>`)

// TestConsoleAuditLog: the audit page filters by holder, by a part of the
// route, and by dates, newest first, 50 a page with a link to the next.
func TestConsoleAuditLog(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	ctx := context.Background()
	for i := range 60 {
		if err := f.ops.Audit.Append(ctx, intake.AuditEvent{Role: intake.RoleSales, Name: "pager",
			Action: "GET /v1/admin/leads/{id}", Target: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Status: 200}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.ops.Audit.Append(ctx, intake.AuditEvent{Role: intake.RoleSales, Name: "other",
		Action: "POST /v1/admin/leads/{id}/redrive", Target: "00000000-0000-4000-8000-999999999999", Status: 202}, 0); err != nil {
		t.Fatal(err)
	}
	cookie, _ := signIn(t, f.url, adminToken)
	open := func(query url.Values) (int, string) {
		query.Set("lang", "en")
		resp, body := consoleDo(t, "GET", f.url+"/admin/audit?"+query.Encode(), cookie, nil, nil)
		return resp.StatusCode, body
	}
	status, body := open(url.Values{"holder": {"PAGER"}})
	if n := len(auditRows.FindAllString(body, -1)); status != http.StatusOK || n != 50 {
		t.Fatalf("holder pager: %d with %d rows, want 200 with 50", status, n)
	}
	if !strings.Contains(body, "00000000-0000-4000-8000-000000000059") || strings.Contains(body, ">other<") {
		t.Error("the first page is not the holder's newest events")
	}
	next := regexp.MustCompile(`href="(/admin/audit\?[^"]+)" id="next"`).FindStringSubmatch(body)
	if next == nil {
		t.Fatal("the first page has no link to the next")
	}
	resp, body := consoleDo(t, "GET", f.url+strings.ReplaceAll(next[1], "&amp;", "&"), cookie, nil, nil)
	if n := len(auditRows.FindAllString(body, -1)); resp.StatusCode != http.StatusOK || n != 10 || strings.Contains(body, `id="next"`) {
		t.Errorf("the second page: %d with %d rows, want 200 with the last 10 and no next link", resp.StatusCode, n)
	}
	if _, body := open(url.Values{"action": {"redrive"}}); len(auditRows.FindAllString(body, -1)) != 1 || !strings.Contains(body, ">other<") {
		t.Error("the action filter does not find the one redrive")
	}
	day := func(d int) string {
		return time.Now().In(time.FixedZone("UTC+5", 5*3600)).AddDate(0, 0, d).Format(time.DateOnly)
	}
	if _, body := open(url.Values{"holder": {"other"}, "from": {day(-1)}, "to": {day(1)}}); len(auditRows.FindAllString(body, -1)) != 1 {
		t.Error("a date range around today lost the event")
	}
	for _, q := range []url.Values{{"from": {day(1)}}, {"to": {day(-2)}}} {
		if _, body := open(q); auditRows.MatchString(body) {
			t.Errorf("%v shows events of today", q)
		}
	}
	if status, body := open(url.Values{"from": {"31.12.2026"}}); status != http.StatusBadRequest || !strings.Contains(body, "YYYY-MM-DD") {
		t.Errorf("a date that cannot be read: %d, want 400 with a message", status)
	}
}

// TestConsoleQueues: the page counts the queues and lists failed tasks by
// type, id and error; the admin's home counts them. Retrying a task that
// is not a lead's runs it; a lead:route task of a failed lead redrives the
// lead (its old task deleted, a new one queued, nothing run); of a lead
// still received, runs the task that lead waits for; of a routed lead, is
// refused. A post without csrf does nothing.
func TestConsoleQueues(t *testing.T) {
	t.Parallel()
	f := consoleFixture(t)
	ctx := context.Background()
	cookie, _ := signIn(t, f.url, adminToken)
	csrf := csrfOf(t, f.url, cookie)
	mail := failedCampaignTask(f)
	failedLead := reviewLead(t, f)
	if _, err := f.store.Leads.Transition(ctx, failedLead, intake.Transition{From: intake.Review, To: intake.Failed}); err != nil {
		t.Fatal(err)
	}
	route := failedRouteTask(f, failedLead)

	resp, body := consoleDo(t, "GET", f.url+"/admin/queues?lang=en", cookie, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("queues: %d", resp.StatusCode)
	}
	for _, want := range []string{mail.ID, route.ID, "sendgrid: send: 500", `action="` + retryPath(route)} {
		if !strings.Contains(strings.ToLower(body), strings.ToLower(want)) {
			t.Errorf("the queues page lacks %q", want)
		}
	}
	if _, body := consoleDo(t, "GET", f.url+"/admin/?lang=en", cookie, nil, nil); !strings.Contains(body, "Failed tasks: 2") {
		t.Error("the admin's home does not count the 2 failed tasks")
	}

	retry := func(task console.Task, withCSRF bool) (int, string) {
		form := url.Values{}
		if withCSRF {
			form.Set("csrf", csrf)
		}
		resp, _ := consoleDo(t, "POST", f.url+retryPath(task)+"?lang=en", cookie, form, nil)
		return resp.StatusCode, resp.Header.Get("Location")
	}
	if status, _ := retry(mail, false); status != http.StatusForbidden {
		t.Errorf("a retry without csrf: %d, want 403", status)
	}
	if ran, _ := f.tasks.did(); len(ran) != 0 {
		t.Fatalf("a retry without csrf ran %v", ran)
	}
	if status, loc := retry(mail, true); status != http.StatusSeeOther || !strings.Contains(loc, "done=retried") {
		t.Errorf("retry the campaign task: %d to %q, want 303 retried", status, loc)
	}
	if status, loc := retry(route, true); status != http.StatusSeeOther || !strings.Contains(loc, "done=redriven") {
		t.Errorf("retry the failed lead's route task: %d to %q, want 303 redriven", status, loc)
	}
	ran, deleted := f.tasks.did()
	if !slices.Equal(ran, []string{mail.ID}) || !slices.Equal(deleted, []string{route.ID}) {
		t.Errorf("ran %v and deleted %v; want the campaign task run and the route task deleted", ran, deleted)
	}
	if l, err := f.store.Leads.Get(ctx, failedLead); err != nil || l.State != intake.Received || !slices.Contains(f.queue.ids, failedLead) {
		t.Errorf("the redriven lead is %v (%v), queued %v; want received and queued", l.State, err, f.queue.ids)
	}
	// The same lead, now received, waits for its route task: retrying
	// that runs it.
	again := failedRouteTask(f, failedLead)
	if status, loc := retry(again, true); status != http.StatusSeeOther || !strings.Contains(loc, "done=retried") {
		t.Errorf("retry the route task of a received lead: %d to %q, want 303 retried", status, loc)
	}
	routed := reviewLead(t, f)
	if _, err := f.store.Leads.Transition(ctx, routed, intake.Transition{From: intake.Review, To: intake.Routed}); err != nil {
		t.Fatal(err)
	}
	if status, _ := retry(failedRouteTask(f, routed), true); status != http.StatusConflict {
		t.Errorf("retry the route task of a routed lead: %d, want 409", status)
	}
	if status, _ := retry(console.Task{Queue: "leads", ID: "lead:route:" + uuid.NewString()}, true); status != http.StatusNotFound {
		t.Errorf("retry a task that is not there: %d, want 404", status)
	}
	if ran, _ := f.tasks.did(); !slices.Equal(ran, []string{mail.ID, again.ID}) {
		t.Errorf("ran %v, want the campaign task and the received lead's route task", ran)
	}
}
