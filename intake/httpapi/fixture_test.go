package httpapi

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/httpapi/console"
	"github.com/paymtech/leadgate/intake/privacy"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/redisstore/ops"
	"github.com/paymtech/leadgate/intake/redisstore/sessions"
	"github.com/paymtech/leadgate/intake/seal"
	"github.com/paymtech/leadgate/jobs"
)

// The parts of the store and the privacy service satisfy the handlers'
// interfaces.
var (
	_ Leads     = (*redisstore.Leads)(nil)
	_ People    = (*redisstore.People)(nil)
	_ Campaigns = (*redisstore.Campaigns)(nil)
	_ AuditLog  = (*ops.Audit)(nil)
	_ Privacy   = (*privacy.Service)(nil)
)

// Redis keys the tests read directly to check what the handlers stored;
// redisstore/keys.go is the schema they mirror.
const (
	keyMarketing         = "lg:marketing"
	keyPendingOptins     = "lg:optins:pending"
	keySuppressed        = "lg:suppressed"
	keyPeople            = "lg:people"
	keyAudit             = "lg:audit"
	keyPhonePfx          = "lg:phone:"
	keyConsents          = ":consents"
	keyLeads             = ":leads"
	keyPersonPfx         = "lg:person:"
	keyLeadPrefix        = "lg:lead:"
	keySentPfx           = "lg:sent:"
	keyEventSeenPfx      = "lg:sgevent:"
	keyCampaigns         = "lg:campaigns"
	keyCampaignMarks     = ":marks"
	keyCampaignTo        = ":to"
	keySubjectRequestPfx = "lg:subject:request:"
	// consoleIdle is the console sessions' idle limit in the tests.
	consoleIdle = 8 * time.Hour
	// eventSeenTTL is how long the store remembers a SendGrid event id.
	eventSeenTTL = 7 * 24 * time.Hour
)

func personKey(person string) string  { return keyPersonPfx + person }
func campaignKey(id string) string    { return "lg:campaign:" + id }
func stateKey(st intake.State) string { return "lg:leads:state:" + string(st) }

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testKeys(t testing.TB) *seal.Keys {
	k, err := seal.NewKeys([]byte(strings.Repeat("d", 32)), nil, []byte(strings.Repeat("i", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// storeFixture is a store on a private redis-server of the test's own.
type storeFixture struct {
	store *redisstore.Store
	ops   *ops.Records // over the same Redis: the audit log
	keys  *seal.Keys
	rdb   redis.UniversalClient
	clock *clock
	srv   *redistest.Server
	tasks *fakeTasks // asynq's queues, as the console's queues page sees them
}

func setupStore(t *testing.T) storeFixture {
	t.Helper()
	srv := redistest.Start(t)
	c := &clock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	rdb := srv.Client(t)
	keys := testKeys(t)
	return storeFixture{store: redisstore.New(rdb, keys, c.Now), ops: ops.New(rdb, c.Now), keys: keys, rdb: rdb, clock: c, srv: srv,
		tasks: &fakeTasks{tasks: map[string]*console.Task{}}}
}

// handedOver lists what the submissions handed to the workers, in order:
// the leads whose routing the accept script put on the admission stream,
// then those queued directly (redrive, unblock) through the fake queue.
func (f httpFixture) handedOver(t *testing.T) []string {
	t.Helper()
	return append(f.admitted(t, "route"), f.queue.enqueued()...)
}

// admitted lists the leads of the admission stream's entries of kind.
func (sf storeFixture) admitted(t *testing.T, kind string) []string {
	t.Helper()
	msgs, err := sf.rdb.XRange(context.Background(), redisstore.AdmissionStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		if id, ok := m.Values[kind].(string); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// server is the HTTP side over the fixture's store and queue q.
func (sf storeFixture) server(q *fakeQueue, opts Options, log *slog.Logger) *Server {
	st := sf.store
	return NewServer(Deps{Leads: st.Leads, People: st.People, Campaigns: st.Campaigns, Audit: sf.ops.Audit, Queue: q, Keys: sf.keys,
		Sessions: sessions.New(sf.rdb, consoleIdle, sf.clock.Now), Tasks: sf.tasks,
		// campaigns: the console's preview, through the sender's renderer
		PreviewCampaign: (&jobs.Campaigner{BaseURL: "https://leads.example.kz", PolicyURL: "https://example.kz/privacy"}).Preview,
		Privacy:         &privacy.Service{Records: st.Subjects, People: st.People, Queue: q, Now: sf.clock.Now, Log: log}},
		opts, log, sf.clock.Now)
}

// fakePerson is an obviously fake applicant.
func fakePerson() *intake.Submission {
	return &intake.Submission{EntityType: intake.LegalEntity, Name: "Тест Тестов", Phone: "+77010000001",
		Email: "Test.Person@Example.com", EmailKey: "test.person@example.com", TaxID: "210840004064",
		Products: []string{"acquiring", "pos"}, Message: "Тестовое сообщение", Lang: "ru"}
}

func application(sub *intake.Submission) intake.Application {
	return intake.Application{Submission: sub,
		Consent:     intake.Consent{Processing: true, PolicyVersion: "1", IP: "192.0.2.10", UserAgent: "test-agent"},
		Meta:        intake.Metadata{IP: "192.0.2.10", UserAgent: "test-agent"},
		PerIP:       intake.Limit{N: 100, Per: time.Hour},
		PerEmail:    intake.Limit{N: 100, Per: time.Hour},
		DoubleOptIn: true}
}
