package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/httpapi"
	"github.com/paymtech/leadgate/intake/httpapi/console"
	"github.com/paymtech/leadgate/intake/privacy"
	"github.com/paymtech/leadgate/intake/redisstore"
	"github.com/paymtech/leadgate/intake/redisstore/admission"
	"github.com/paymtech/leadgate/intake/redisstore/delivery"
	"github.com/paymtech/leadgate/intake/redisstore/ops"
	"github.com/paymtech/leadgate/intake/redisstore/sessions"
	"github.com/paymtech/leadgate/intake/risk"
	"github.com/paymtech/leadgate/intake/seal"
	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm/amocrm"
	"github.com/paymtech/leadgate/integrations/crm/bitrix24"
	"github.com/paymtech/leadgate/integrations/crm/file"
	"github.com/paymtech/leadgate/integrations/crm/webhook"
	"github.com/paymtech/leadgate/integrations/mail"
	mailfile "github.com/paymtech/leadgate/integrations/mail/file"
	"github.com/paymtech/leadgate/integrations/mail/sendgrid"
	"github.com/paymtech/leadgate/integrations/notify/email"
	"github.com/paymtech/leadgate/integrations/notify/telegram"
	"github.com/paymtech/leadgate/jobs"
	"github.com/paymtech/leadgate/jobs/routing"
	"github.com/paymtech/leadgate/templates"
)

// Role is which parts of leadgate a process runs.
type Role string

func (r Role) web() bool    { return r == "serve" || r == "web" }
func (r Role) worker() bool { return r == "serve" || r == "worker" }
func (r Role) clock() bool  { return r == "serve" || r == "clock" }

// shutdownGrace bounds how long in-flight requests and tasks may finish.
const shutdownGrace = 20 * time.Second

// Main wires every package into a running process. End-to-end tests use it
// as the binary does: Run, then Close.
type Main struct {
	Config *config.Config
	Stdout io.Writer        // where development notices (tokens) are printed
	Log    *slog.Logger     // nil: JSON in production, text in development, to Stderr
	Stderr io.Writer        // where that log goes; nil: os.Stderr
	Now    func() time.Time // nil: time.Now

	// logBuffer gathers the lines of the Log Main made itself into fewer
	// writes (a web writes two a request); Close flushes it.
	logBuffer *lineBuffer

	rdb       redis.UniversalClient
	mini      *miniredis.Miniredis
	stopTicks chan struct{}
	listener  net.Listener
	// registry holds the gauges read from Redis (web and serve only).
	registry *prometheus.Registry
	// metrics and metricsListener serve METRICS_ADDR, when set.
	metrics         *http.Server
	metricsListener net.Listener
	http            *http.Server
	served          chan struct{} // closed once http's Serve has returned
	draining        atomic.Bool   // set on Close: /readyz answers 503 for SHUTDOWN_DELAY
	client          *asynq.Client
	worker          *asynq.Server
	scheduler       *asynq.Scheduler
	closeOnce       sync.Once

	// stopDrain stops the admission drain; drained is closed once it has.
	stopDrain context.CancelFunc
	drained   chan struct{}
	// stopRecovery ends the worker's Redis watch (jobs.Recovery.Run);
	// recovery is closed once it has.
	stopRecovery context.CancelFunc
	recovery     chan struct{}
}

// Run starts the parts of leadgate that role names and returns once they run.
func (m *Main) Run(ctx context.Context, role Role) error {
	cfg := m.Config
	if err := m.open(role, m.Stdout); err != nil {
		return err
	}
	keys, err := seal.NewKeys(cfg.Keys.Data, cfg.Keys.OldData, cfg.Keys.Index)
	if err != nil {
		return err
	}
	store := redisstore.New(m.rdb, keys, m.Now)
	records := ops.New(m.rdb, m.Now)
	m.client = asynq.NewClientFromRedisClient(m.rdb)
	queue := jobs.NewQueue(m.client, asynq.NewInspectorFromRedisClient(m.rdb))
	// Every process checks the routing rules, so a broken file stops a deploy
	// at its first process, not at the first lead.
	rules, err := routing.Load(cfg.Routing.Rules)
	if err != nil {
		return fmt.Errorf("ROUTING_RULES: %w", err)
	}
	if role.worker() {
		if err := m.startWorker(ctx, store, records, queue, rules); err != nil {
			return err
		}
	}
	if role.clock() {
		m.scheduler = asynq.NewSchedulerFromRedisClient(m.rdb, &asynq.SchedulerOpts{Logger: jobs.AsynqLogger(m.Log), LogLevel: asynq.WarnLevel})
		if err := jobs.Schedule(m.scheduler, cfg.Retention.PurgeSchedule); err != nil {
			return fmt.Errorf("clock: %w", err)
		}
		if err := m.scheduler.Start(); err != nil {
			return fmt.Errorf("start clock: %w", err)
		}
	}
	if role.web() {
		// The gauges read from Redis are web's alone, so that a sum across
		// the processes of a deployment counts every lead once.
		m.registry = prometheus.NewRegistry()
		insp := asynq.NewInspectorFromRedisClient(m.rdb)
		m.registry.MustRegister(&gauges{redis: store, leads: store.Leads, insp: insp, log: m.Log})
		if err := m.serveHTTP(store, records, keys, queue, asynqTasks{insp}, rules.Teams()); err != nil {
			return err
		}
	}
	if cfg.HTTP.MetricsAddr != "" {
		if err := m.serveMetrics(); err != nil {
			return err
		}
	}
	m.Log.Info("leadgate started", "role", string(role), "version", version, "production", cfg.Production)
	return nil
}

// openRedis connects to REDIS_URL, or in development starts the embedded
// in-memory Redis — only for serve, where every part shares one process.
// open is what every command does first: the clock and logger defaults,
// the development defaults (keys and tokens in var/, their notes printed to
// out) unless in production or out is nil, and the Redis connection for
// role.
func (m *Main) open(role Role, out io.Writer) error {
	cfg := m.Config
	if m.Now == nil {
		m.Now = time.Now
	}
	if m.Log == nil {
		stderr := m.Stderr
		if stderr == nil {
			stderr = os.Stderr
		}
		m.logBuffer = newLineBuffer(stderr, logDelay, 64<<10)
		m.Log = newLogger(m.logBuffer, cfg.Production)
	}
	if !cfg.Production && out != nil {
		notes, err := cfg.ApplyDevelopmentDefaults()
		if err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintln(out, n)
		}
	}
	return m.openRedis(role)
}

func (m *Main) openRedis(role Role) error {
	cfg := m.Config
	if cfg.Redis.URL == "" {
		if role != "serve" {
			return fmt.Errorf("REDIS_URL is required for %s (the in-memory Redis exists only inside serve)", role)
		}
		mini, err := startDevRedis()
		if err != nil {
			return fmt.Errorf("embedded Redis: %w", err)
		}
		m.mini = mini
		m.stopTicks = make(chan struct{})
		go m.tickMiniredis()
		m.rdb = redis.NewClient(&redis.Options{Addr: m.mini.Addr()})
		m.Log.Warn("development setup: embedded in-memory Redis (everything is lost on exit); set REDIS_URL for a real one")
		return nil
	}
	rdb, err := cfg.NewRedisClient()
	if err != nil {
		return err
	}
	m.rdb = rdb
	if cfg.Production {
		m.checkRedisDurability()
	}
	return nil
}

// tickMiniredis advances the embedded Redis's clock, which otherwise never
// expires keys on its own.
func (m *Main) tickMiniredis() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-m.stopTicks:
			return
		case now := <-t.C:
			m.mini.FastForward(now.Sub(last))
			last = now
		}
	}
}

// checkRedisDurability warns when Redis would lose or evict accepted leads.
// Managed Redis may refuse CONFIG; then the operator is reminded instead.
func (m *Main) checkRedisDurability() {
	for _, want := range [][2]string{{"appendonly", "yes"}, {"maxmemory-policy", "noeviction"}} {
		got, err := m.rdb.ConfigGet(context.Background(), want[0]).Result()
		switch {
		case err != nil:
			m.Log.Warn("cannot read Redis configuration; make sure it runs with appendonly yes and maxmemory-policy noeviction", "setting", want[0])
		case got[want[0]] != want[1]:
			m.Log.Error("Redis is not configured as a database: accepted leads may be lost or evicted", "setting", want[0], "have", got[want[0]], "want", want[1])
		}
	}
}

// startWorker runs the task handlers — routing to the CRM, the sweeper, and
// sales notifications when a channel is configured — and the admission
// drain that feeds them.
func (m *Main) startWorker(ctx context.Context, store *redisstore.Store, records *ops.Records, queue *jobs.Queue, rules *routing.Rules) error {
	cfg := m.Config
	risk.IsDisposable("example.kz") // loads the disposable-domain list now, not on the first lead
	crm, err := m.crm()
	if err != nil {
		return err
	}
	// A starting worker may have a fixed CRM endpoint: a 410 Gone seen
	// before is forgotten.
	if err := records.Workers.ClearCRMGone(ctx); err != nil {
		m.Log.Warn("could not clear the CRM-disabled flag", "err", err)
	}
	router := &jobs.Router{Leads: store.Leads, CRM: crm, Pushes: delivery.New(m.rdb, m.Now), Rules: rules, Workers: records.Workers, Threshold: cfg.Routing.RiskReviewThreshold,
		Erase: queue.EnqueueCRMErase, MaxAge: cfg.Retry.MaxAge, Now: m.Now, Log: m.Log}
	mailer, err := m.mailer()
	if err != nil {
		return err
	}
	from := mail.Address{Email: cfg.Mail.From, Name: cfg.Mail.FromName}
	welcomer := &jobs.Welcomer{Leads: store.Leads, People: store.People, Mailer: mailer, From: from,
		BaseURL: strings.TrimSuffix(cfg.HTTP.PublicBaseURL.String(), "/"), PolicyURL: cfg.HTTP.PolicyURL,
		PolicyURLs: cfg.HTTP.PolicyURLs, Company: mailCompany(cfg),
		OptinTTL: cfg.Retention.UnconfirmedOptin, QueueAck: queue.EnqueueAck, Now: m.Now, Log: m.Log}
	router.Welcome = welcomer.AcknowledgeFirst
	channels, err := m.salesChannels(mailer, from)
	if err != nil {
		return err
	}
	var notifier *jobs.Notifier
	if len(channels) > 0 {
		notifier = &jobs.Notifier{Leads: store.Leads, Channels: channels, Now: m.Now, Log: m.Log}
		names := notifier.Names()
		router.Notify = func(ctx context.Context, id string) error { return queue.EnqueueNotify(ctx, id, names...) }
	}
	m.worker = asynq.NewServerFromRedisClient(m.rdb, jobs.ServerConfig(cfg.Retry.BaseDelay, m.Log))
	sweeper := &jobs.Sweeper{Leads: store.Leads, Queue: queue, Now: m.Now, Log: m.Log}
	recovery := &jobs.Recovery{Redis: m.rdb, Orphans: records.Workers, Sweeper: sweeper, Now: m.Now, Log: m.Log}
	m.rdb.AddHook(recovery.Hook())
	mux := jobs.NewMux(jobs.Handlers{Router: router, Sweeper: sweeper, Recovery: recovery,
		Notifier: notifier, Welcomer: welcomer, Purger: m.purger(store, records),
		CRMSync: &jobs.CRMSync{Leads: store.Leads, CRM: crm, System: cfg.CRM.Driver, MaxAge: cfg.Retry.MaxAge, Now: m.Now, Log: m.Log},
		Campaigner: &jobs.Campaigner{Store: store.Campaigns, Mailer: mailer, From: from, BaseURL: welcomer.BaseURL,
			PolicyURL: cfg.HTTP.PolicyURL, PolicyURLs: cfg.HTTP.PolicyURLs, Company: mailCompany(cfg), ASMGroupID: cfg.Mail.SendGridASMGroupID, Log: m.Log}})
	if err := m.worker.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	m.startDrain(queue)
	rctx, stop := context.WithCancel(context.Background())
	m.recovery = make(chan struct{})
	m.stopRecovery = stop
	go func() {
		defer close(m.recovery)
		recovery.Run(rctx)
	}()
	return nil
}

// startDrain moves what the web admitted into asynq, in this worker
// process, beside the other workers' drains (jobs.Drain).
func (m *Main) startDrain(queue *jobs.Queue) {
	host, _ := os.Hostname()
	consumer := fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
	drain := &jobs.Drain{Stream: admission.New(m.rdb, consumer), Queue: queue, Log: m.Log}
	var ctx context.Context
	ctx, m.stopDrain = context.WithCancel(context.Background())
	m.drained = make(chan struct{})
	go func() {
		defer close(m.drained)
		drain.Run(ctx)
	}()
}

// salesChannels are the configured ways of telling sales about a new lead.
func (m *Main) salesChannels(mailer mail.Mailer, from mail.Address) ([]jobs.SalesChannel, error) {
	cfg := m.Config
	var channels []jobs.SalesChannel
	if cfg.Telegram.BotToken != "" {
		client, err := telegram.New(cfg.Telegram.APIURL, cfg.Telegram.BotToken, cfg.Telegram.ChatID, integrations.NewHTTPClient(0))
		if err != nil {
			return nil, err
		}
		channels = append(channels, &telegram.Channel{Client: client, IncludeContacts: cfg.Telegram.IncludeContacts})
	}
	if cfg.Mail.SalesNotifyEmail != "" {
		channels = append(channels, &email.Channel{Mailer: mailer, From: from, To: mail.Address{Email: cfg.Mail.SalesNotifyEmail}})
	}
	return channels, nil
}

// mailer is the configured mail driver: SendGrid, or .eml files under var/outbox.
func (m *Main) mailer() (mail.Mailer, error) {
	cfg := m.Config
	if cfg.Mail.Driver == "sendgrid" {
		return sendgrid.New(cfg.Mail.SendGridAPIKey, cfg.Mail.SendGridAPIHost, integrations.NewHTTPClient(0))
	}
	dir := filepath.Join(cfg.VarDir, "outbox")
	m.Log.Warn("development setup: mail is written to " + dir)
	return mailfile.New(dir), nil
}

func (m *Main) crm() (jobs.CRM, error) {
	cfg := m.Config
	client := integrations.NewHTTPClient(0)
	switch cfg.CRM.Driver {
	case "bitrix24":
		return bitrix24.New(cfg.CRM.Bitrix24WebhookURL, client)
	case "amocrm":
		// One limiter in Redis for every worker process: amoCRM counts
		// the integration's requests, not ours per process.
		return amocrm.New(amocrm.Config{BaseURL: cfg.CRM.AmoCRMBaseURL, Token: cfg.CRM.AmoCRMToken,
			PipelineID: cfg.CRM.AmoCRMPipelineID, LeadIDFieldID: cfg.CRM.AmoCRMLeadIDField,
			Limiter: ops.NewLimiter(m.rdb, amocrm.System, amocrm.RateLimit, time.Second)}, client)
	case "webhook":
		return webhook.New(cfg.CRM.WebhookURL, cfg.CRM.WebhookSecret, client)
	case "file":
		dir := filepath.Join(cfg.VarDir, "crm")
		m.Log.Warn("development setup: leads are written in clear to " + dir)
		return file.New(dir), nil
	}
	return nil, fmt.Errorf("CRM_DRIVER %q is not available", cfg.CRM.Driver)
}

func (m *Main) serveHTTP(store *redisstore.Store, records *ops.Records, keys *seal.Keys, queue intake.Queue, tasks console.Tasks, teams []intake.Team) error {
	cfg := m.Config
	lang, _ := templates.ParseLang(cfg.HTTP.DefaultLang)
	own, err := config.NormalizeOrigin(cfg.HTTP.PublicBaseURL.Scheme + "://" + cfg.HTTP.PublicBaseURL.Host)
	if err != nil {
		return fmt.Errorf("PUBLIC_BASE_URL: %w", err)
	}
	if cfg.Mail.SendGridWebhookPublicKey != "" {
		if _, err := sendgrid.ParseEventKey(cfg.Mail.SendGridWebhookPublicKey); err != nil {
			return err // names the variable, never the value
		}
	} else if cfg.Production {
		m.Log.Warn("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: bounces and spam reports from SendGrid are refused (503) and never suppress anyone")
	}
	subjects := &privacy.Service{Records: store.Subjects, People: store.People, Queue: queue,
		Due: cfg.Retention.SubjectRequestDue, Now: m.Now, Log: m.Log}
	srv := httpapi.NewServer(httpapi.Deps{Leads: store.Leads, People: store.People, Campaigns: store.Campaigns,
		Audit: records.Audit, Privacy: subjects, Queue: queue, Keys: keys,
		Sessions: sessions.New(m.rdb, cfg.Console.SessionTTL, m.Now), Tasks: tasks,
		// The console's campaign preview renders as the sender does, with
		// the same base and policy URLs and company as the worker's Campaigner.
		PreviewCampaign: (&jobs.Campaigner{BaseURL: strings.TrimSuffix(cfg.HTTP.PublicBaseURL.String(), "/"),
			PolicyURL: cfg.HTTP.PolicyURL, PolicyURLs: cfg.HTTP.PolicyURLs, Company: mailCompany(cfg)}).Preview}, httpapi.Options{
		PublicOrigin:      own,
		AllowedOrigins:    cfg.HTTP.CORSAllowedOrigins,
		FrameAncestors:    cfg.HTTP.FrameAncestors,
		TrustedProxies:    cfg.HTTP.TrustedProxies,
		DefaultLang:       lang,
		Products:          slices.Clone(cfg.HTTP.ProductCatalog),
		CaptureCookies:    cfg.HTTP.CaptureCookies,
		PolicyVersion:     cfg.HTTP.PolicyVersion,
		PolicyURL:         cfg.HTTP.PolicyURL,
		PerIP:             cfg.Limits.PerIP,
		PerEmail:          cfg.Limits.PerEmail,
		DoubleOptIn:       cfg.HTTP.DoubleOptIn,
		AdminTokens:       cfg.Keys.AdminTokens,
		SendGridKey:       cfg.Mail.SendGridWebhookPublicKey,
		AuditRetention:    cfg.Retention.Audit,
		ConsoleLoginLimit: cfg.Console.LoginRateLimit,
		// --- formux (issue 12) ---
		PolicyURLs: map[templates.Lang]string{templates.KK: cfg.HTTP.PolicyURLFor("kk"),
			templates.RU: cfg.HTTP.PolicyURLFor("ru"), templates.EN: cfg.HTTP.PolicyURLFor("en")},
		Company: templates.Company{Name: cfg.HTTP.CompanyName, Contact: cfg.HTTP.CompanyContact},
		// --- end formux ---
		Teams: teams,
	}, m.Log, m.Now)
	mux := http.NewServeMux()
	srv.Register(mux)
	registerOps(mux, store, &m.draining, publicMetrics(cfg, m.metricsHandler(), srv.GuardMetrics))
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	m.listener = ln
	m.http = &http.Server{
		Handler:           withAccessLog(m.Log, mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn),
	}
	m.served = make(chan struct{})
	go func() {
		defer close(m.served)
		if err := m.http.Serve(&drainingListener{TCPListener: ln.(*net.TCPListener)}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("http server stopped", "err", err)
		}
	}()
	if !cfg.Production {
		fmt.Fprintf(m.Stdout, "leadgate (development setup) serves the form at http://%s/\n", displayAddr(ln.Addr()))
	}
	return nil
}

// Addr is the address the HTTP server listens on, once Run has returned.
func (m *Main) Addr() string { return displayAddr(m.listener.Addr()) }

func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if ok && tcp.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", tcp.Port)
	}
	return a.String()
}

// Close stops accepting work, lets in-flight requests and tasks finish
// (bounded by shutdownGrace), and releases everything.
func (m *Main) Close() error {
	var err error
	m.closeOnce.Do(func() {
		// They stop side by side, so the whole stop stays within
		// shutdownGrace (the worker's ShutdownTimeout is the same).
		var wg sync.WaitGroup
		if m.http != nil {
			wg.Go(func() {
				// The load balancer learns from /readyz to send no more,
				// while what it already sent is still served.
				m.draining.Store(true)
				time.Sleep(m.Config.HTTP.ShutdownDelay)
				ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
				defer cancel()
				err = m.http.Shutdown(ctx)
				// Shutdown may return while the listener still hands
				// Serve the connections queued before it closed
				// (drainingListener); once Serve has returned, a second
				// Shutdown waits for their answers too.
				select {
				case <-m.served:
					if err == nil {
						err = m.http.Shutdown(ctx)
					}
				case <-ctx.Done():
				}
			})
		}
		if m.metrics != nil {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
				defer cancel()
				m.metrics.Shutdown(ctx)
			})
		}
		if m.scheduler != nil {
			wg.Go(m.scheduler.Shutdown)
		}
		if m.worker != nil {
			wg.Go(m.worker.Shutdown)
		}
		if m.stopDrain != nil {
			m.stopDrain()
			wg.Go(func() { <-m.drained })
		}
		wg.Wait()
		if m.stopRecovery != nil {
			m.stopRecovery()
			<-m.recovery
		}
		if m.client != nil {
			m.client.Close()
		}
		if m.rdb != nil {
			m.rdb.Close()
		}
		if m.mini != nil {
			close(m.stopTicks)
			m.mini.Close()
		}
		if m.logBuffer != nil {
			m.logBuffer.Flush()
		}
	})
	return err
}

// purger is the retention purge as configured, for the clock's lead:purge
// task and for `leadgate purge`.
func (m *Main) purger(store *redisstore.Store, records *ops.Records) *jobs.Purger {
	cfg := m.Config
	return &jobs.Purger{Store: store.Retention, Audit: records.Audit, Workers: records.Workers, Redis: m.rdb, LeadRetention: cfg.Retention.Lead, OptinTTL: cfg.Retention.UnconfirmedOptin,
		TaskRetention: cfg.Retention.Task, AuditRetention: cfg.Retention.Audit, Now: m.Now, Log: m.Log}
}

// purge runs `leadgate purge [--dry-run]`: one retention pass now, against
// REDIS_URL, printing counts (never personal data). It needs no data key:
// nothing sealed is opened. The caller closes m.
func (m *Main) purge(ctx context.Context, stdout io.Writer, dryRun bool) error {
	if m.Config.Redis.URL == "" {
		return errors.New("purge needs REDIS_URL: without it, serve's embedded Redis lives inside that one process and goes with it, so there is nothing here to purge")
	}
	if err := m.open("purge", nil); err != nil { // no keys needed: nothing sealed is opened
		return err
	}
	r, err := m.purger(redisstore.New(m.rdb, nil, m.Now), ops.New(m.rdb, m.Now)).Purge(ctx, dryRun)
	if errors.Is(err, jobs.ErrPurgeRunning) {
		return errors.New("purge: another purge is running (the clock's, or another operator's); try again when it is done")
	}
	fmt.Fprintln(stdout, r)
	return err
}

// mailCompany is the operator the emails name: the same COMPANY_NAME and
// COMPANY_CONTACT as the pages, so that mail and form agree.
func mailCompany(cfg *config.Config) templates.Company {
	return templates.Company{Name: cfg.HTTP.CompanyName, Contact: cfg.HTTP.CompanyContact}
}
