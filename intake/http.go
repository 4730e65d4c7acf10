package intake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/paymtech/leadgate/templates"
)

// MaxBody is the largest request body accepted; more is 413.
const MaxBody = 64 << 10

// Options configures the public and admin HTTP handlers.
type Options struct {
	PublicOrigin   string         // the service's own origin, e.g. "https://leads.example.kz"
	AllowedOrigins []string       // other origins whose pages may post the form
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For is believed
	DefaultLang    templates.Lang
	Products       []string // the catalogue of product codes
	CaptureCookies []string // cookie names whose values are recorded
	PolicyVersion  string
	PolicyURL      string
	PerIP          Limit // accepted submissions per client IP
	PerEmail       Limit // accepted submissions per person
	DoubleOptIn    bool  // a marketing opt-in waits for the emailed link
	AdminTokens    []Token
	PublicBaseURL  string        // base of links put into emails, without a trailing slash
	SendGridKey    string        // SENDGRID_WEBHOOK_PUBLIC_KEY: verifies the Event Webhook; empty refuses every event post
	AuditRetention time.Duration // AUDIT_RETENTION: audit events older than this are dropped
	SubjectDue     int           // SUBJECT_REQUEST_DUE: working days within which a subject request is due
}

// Server serves the form, takes submissions and answers admin lookups.
type Server struct {
	store     *Store
	queue     Queue
	opts      Options
	origins   originPolicy
	validator *Validator
	log       *slog.Logger
	now       func() time.Time
}

// NewServer returns the HTTP side of intake.
func NewServer(store *Store, queue Queue, opts Options, log *slog.Logger, now func() time.Time) *Server {
	return &Server{
		store: store, queue: queue, opts: opts, log: log, now: now,
		origins:   originPolicy{own: opts.PublicOrigin, allowed: opts.AllowedOrigins},
		validator: NewValidator(opts.Products, now),
	}
}

// Register adds intake's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.formPage)
	mux.HandleFunc("GET /thanks", s.thanksPage)
	mux.HandleFunc("POST /v1/leads", s.submit)
	mux.HandleFunc("OPTIONS /v1/leads", s.preflight)
	mux.HandleFunc("GET /v1/optin/confirm", s.confirmOptin)
	mux.HandleFunc("POST /v1/optin/confirm", s.confirmOptin)
	mux.Handle("POST /v1/webhooks/sendgrid", s.sendgridWebhook())
	mux.Handle("GET /v1/admin/leads", s.admin("sales", s.listLeads))
	mux.Handle("GET /v1/admin/leads/{id}", s.admin("sales", s.getLead))
	mux.Handle("POST /v1/admin/leads/{id}/redrive", s.admin("sales", s.redrive))
	mux.Handle("GET /v1/admin/audit", s.admin("admin", s.auditLog))
	s.registerCampaigns(mux)
	s.registerSubjects(mux)
}

func (s *Server) lang(r *http.Request) templates.Lang {
	return templates.Negotiate(r.URL.Query().Get("lang"), r.Header.Get("Accept-Language"), s.opts.DefaultLang)
}

func (s *Server) formPage(w http.ResponseWriter, r *http.Request) {
	s.renderForm(w, http.StatusOK, s.lang(r), nil, nil, "")
}

func (s *Server) thanksPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.RenderThanks(w, templates.ThanksPage{Lang: s.lang(r)}); err != nil {
		s.log.Error("render thanks page", "err", err)
	}
}

// renderForm shows the form, re-filled with what the person typed and the
// problems found, when there are any.
func (s *Server) renderForm(w http.ResponseWriter, status int, lang templates.Lang, f *Form, fields FieldErrors, notice string) {
	page := templates.FormPage{Lang: lang, Action: "/v1/leads", Path: "/", Values: map[string]string{"lang": string(lang)},
		Errors: map[string]string{}, Notice: notice, PolicyURL: s.opts.PolicyURL, PolicyVersion: s.opts.PolicyVersion,
		FormToken: s.store.keys.formToken(s.now())}
	for name, p := range fields {
		page.Errors[name] = templates.Message(lang, p.Key, p.Args...)
	}
	var ticked []string
	if f != nil {
		ticked = f.Products
		for k, v := range map[string]string{"entity_type": f.EntityType, "name": f.Name, "phone": f.Phone,
			"email": f.Email, "tax_id": f.TaxID, "message": f.Message,
			"consent_processing": strconv.FormatBool(bool(f.ConsentProcessing)),
			"consent_marketing":  strconv.FormatBool(bool(f.ConsentMarketing)),
			"page_url":           f.PageURL, "timezone": f.Timezone, "utm_source": f.UTMSource,
			"utm_medium": f.UTMMedium, "utm_campaign": f.UTMCampaign, "redirect_url": f.RedirectURL} {
			page.Values[k] = v
		}
	}
	for _, code := range s.opts.Products {
		page.Products = append(page.Products, templates.Product{Code: code,
			Label: templates.ProductLabel(lang, code), Checked: slices.Contains(ticked, code)})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := templates.RenderForm(w, page); err != nil {
		s.log.Error("render form page", "err", err)
	}
}

// preflight answers a browser's CORS check before a cross-site JSON post.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	origin, crossSite, ok := s.origins.check(r)
	if !ok {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": string(EForbiddenOrigin)})
		return
	}
	if crossSite {
		allowCORS(w, origin)
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Accept, Accept-Language, Idempotency-Key")
		w.Header().Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

func allowCORS(w http.ResponseWriter, origin string) {
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
}

// wantsHTML tells a browser's own form post (answered with pages and
// redirects) from a script's (answered with JSON).
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// submit takes a connection request. A 202 is sent only once the lead is
// stored and queued.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	lang, browser := s.lang(r), wantsHTML(r)
	origin, crossSite, ok := s.origins.check(r)
	if !ok {
		s.fail(w, lang, browser, nil, &Error{Code: EForbiddenOrigin, Message: "cross-site post from an origin that is not allowed"})
		return
	}
	if crossSite {
		allowCORS(w, origin)
	}
	f, err := decodeForm(w, r)
	if err != nil {
		s.fail(w, lang, browser, nil, err)
		return
	}
	if l, ok := templates.ParseLang(f.Lang); ok {
		lang = l
	}
	if strings.TrimSpace(f.Website) != "" {
		s.log.Info("honeypot filled; answered as accepted, nothing stored")
		s.accepted(w, r, lang, browser, f, uuid.Must(uuid.NewV7()).String(), false)
		return
	}
	sub, fields := s.validator.Validate(*f)
	if fields == nil && browser && sub.RedirectURL != "" && !s.origins.allowsRedirect(sub.RedirectURL) {
		fields = FieldErrors{"redirect_url": {Key: "redirect_url.forbidden"}}
	}
	if fields != nil {
		s.fail(w, lang, browser, f, &Error{Code: EInvalid, Message: "validation failed", Fields: fields})
		return
	}
	if sub.Lang == "" {
		sub.Lang = string(lang)
	}
	app := s.application(r, sub)
	app.Observed = s.observe(r, f)
	adm, err := s.store.Accept(r.Context(), app)
	if err != nil {
		s.fail(w, lang, browser, f, err)
		return
	}
	// A new lead, or a duplicate still Received that may have lost its task
	// (queued again, harmlessly); a blocked person's lead waits for unblock.
	if adm.State == Received {
		// Not the request's context: a client hanging up must not abandon a
		// lead that is already stored.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		if err := s.queue.EnqueueLead(ctx, adm.ID); err != nil {
			if !adm.Duplicate {
				if uerr := adm.Undo(ctx); uerr != nil {
					s.log.Error("enqueue failed and the lead could not be removed; the sweeper will queue it", "lead", adm.ID, "err", uerr)
				}
			}
			s.fail(w, lang, browser, f, unavailable("queue lead", err))
			return
		}
	}
	// A repeat that adds the marketing box: its link goes out now only if the
	// first lead passed the risk check; one still received gets it from the
	// router, one held for review or blocked never.
	if adm.Duplicate && sub.ConsentMarketing && (adm.State == Routed || adm.State == Failed) {
		if err := s.queue.EnqueueOptin(r.Context(), adm.ID); err != nil {
			s.log.Error("a repeat's opt-in could not be queued; it stays pending", "lead", adm.ID, "err", err)
		}
	}
	s.log.Info("lead accepted", "lead", adm.ID, "duplicate", adm.Duplicate, "entity_type", sub.EntityType)
	s.accepted(w, r, lang, browser, f, adm.ID, adm.Duplicate)
}

// application gathers what the server records with a submission (policy 2.3)
// and the consent proof.
func (s *Server) application(r *http.Request, sub *Submission) Application {
	now := s.now().UTC()
	ua := truncate(r.UserAgent(), 512)
	page := sub.PageURL
	if page == "" {
		page = truncate(r.Referer(), 2000)
	}
	meta := Metadata{IP: clientIP(r, s.opts.TrustedProxies), UserAgent: ua, Timezone: sub.Timezone, PageURL: page,
		UTMSource: sub.UTMSource, UTMMedium: sub.UTMMedium, UTMCampaign: sub.UTMCampaign}
	meta.Browser, meta.OS = browserAndOS(ua)
	for _, name := range s.opts.CaptureCookies {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			if meta.Cookies == nil {
				meta.Cookies = map[string]string{}
			}
			meta.Cookies[name] = truncate(c.Value, 256)
		}
	}
	return Application{
		Submission: sub,
		Consent: Consent{Processing: true, Marketing: sub.ConsentMarketing, PolicyVersion: s.opts.PolicyVersion,
			PolicyURL: s.opts.PolicyURL, GivenAt: now, IP: meta.IP, UserAgent: ua, PageURL: page},
		Meta:           meta,
		IdempotencyKey: truncate(r.Header.Get("Idempotency-Key"), 255),
		PerIP:          s.opts.PerIP,
		PerEmail:       s.opts.PerEmail,
		DoubleOptIn:    s.opts.DoubleOptIn,
	}
}

// observe notes what the anti-fraud score looks at; the store adds the
// repeat counts.
func (s *Server) observe(r *http.Request, f *Form) Observed {
	o := Observed{HoneypotNearMiss: f.Website != "", ScriptRan: f.Timezone != "", BrowserPost: wantsHTML(r)}
	if f.FormToken != "" {
		o.FormAge, o.FormTokenInvalid = s.store.keys.formTokenAge(f.FormToken, s.now())
	}
	return o
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

func (s *Server) accepted(w http.ResponseWriter, r *http.Request, lang templates.Lang, browser bool, f *Form, id string, duplicate bool) {
	if browser {
		target := "/thanks?lang=" + string(lang)
		if f.RedirectURL != "" && s.origins.allowsRedirect(f.RedirectURL) {
			target = f.RedirectURL
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	body := map[string]any{"id": id, "status": "accepted"}
	if duplicate {
		body["duplicate"] = true
	}
	writeJSON(w, http.StatusAccepted, body)
}

// decodeForm reads a JSON or urlencoded body of at most MaxBody bytes.
func decodeForm(w http.ResponseWriter, r *http.Request) (*Form, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mediaType != "application/json" && mediaType != "application/x-www-form-urlencoded") {
		return nil, &Error{Code: EUnsupported, Message: "send application/json or application/x-www-form-urlencoded"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Code: ETooLarge, Message: "body over 64 KiB"}
		}
		return nil, &Error{Code: EBadRequest, Message: "could not read the body"}
	}
	f := &Form{}
	if mediaType == "application/json" {
		if err := json.Unmarshal(body, f); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) && typeErr.Field != "" {
				name, _, _ := strings.Cut(typeErr.Field, ".")
				return nil, &Error{Code: EInvalid, Message: "a field has the wrong JSON type",
					Fields: FieldErrors{name: {Key: "field.invalid"}}}
			}
			return nil, &Error{Code: EBadRequest, Message: "malformed JSON"}
		}
		return f, nil
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &Error{Code: EBadRequest, Message: "malformed form body"}
	}
	*f = Form{EntityType: v.Get("entity_type"), Name: v.Get("name"), Phone: v.Get("phone"), Email: v.Get("email"),
		TaxID: v.Get("tax_id"), Products: append(v["products"], v["products[]"]...), Message: v.Get("message"),
		Lang: v.Get("lang"), ConsentProcessing: ParseFlag(v.Get("consent_processing")),
		ConsentMarketing: ParseFlag(v.Get("consent_marketing")), PageURL: v.Get("page_url"),
		Timezone: v.Get("timezone"), UTMSource: v.Get("utm_source"), UTMMedium: v.Get("utm_medium"),
		UTMCampaign: v.Get("utm_campaign"), RedirectURL: v.Get("redirect_url"), FormToken: v.Get("form_token"),
		Website: v.Get("website")}
	return f, nil
}

// statusOf is the one place an error code becomes an HTTP status.
func statusOf(code Code) int {
	switch code {
	case EInvalid:
		return http.StatusUnprocessableEntity
	case EBadRequest:
		return http.StatusBadRequest
	case ETooLarge:
		return http.StatusRequestEntityTooLarge
	case EUnsupported:
		return http.StatusUnsupportedMediaType
	case EForbiddenOrigin, EForbidden:
		return http.StatusForbidden
	case ERateLimited:
		return http.StatusTooManyRequests
	case EUnavailable:
		return http.StatusServiceUnavailable
	case ENotFound:
		return http.StatusNotFound
	case EConflict:
		return http.StatusConflict
	case EUnauthorized:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// noticeKey is the catalogue message shown above the form for an error.
var noticeKey = map[Code]string{
	EInvalid: "form.has_errors", EBadRequest: "error.bad_request", ETooLarge: "error.too_large",
	EUnsupported: "error.unsupported_type", EForbiddenOrigin: "error.forbidden_origin",
	ERateLimited: "error.rate_limited", EUnavailable: "error.unavailable",
}

// fail answers an error: JSON for scripts, the form again for browsers.
func (s *Server) fail(w http.ResponseWriter, lang templates.Lang, browser bool, f *Form, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: "internal", Message: "internal error", Err: err}
	}
	status := statusOf(e.Code)
	if status >= 500 {
		s.log.Error("submission failed", "code", e.Code, "err", err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	key, ok := noticeKey[e.Code]
	if !ok {
		key = "error.unavailable"
	}
	if browser {
		s.renderForm(w, status, lang, f, e.Fields, templates.Message(lang, key))
		return
	}
	body := map[string]any{"error": string(e.Code)}
	if e.Code == EInvalid {
		fields := map[string]string{}
		for name, p := range e.Fields {
			fields[name] = templates.Message(lang, p.Key, p.Args...)
		}
		body["fields"] = fields
	} else {
		body["message"] = templates.Message(lang, key)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// confirmOptin serves the link of the double opt-in email. A GET only shows
// a button — link scanners that prefetch must not confirm anyone — and the
// POST it makes confirms, recording time, IP and browser as proof.
func (s *Server) confirmOptin(w http.ResponseWriter, r *http.Request) {
	lang := s.lang(r)
	person, valid := s.store.keys.optinPerson(r.URL.Query().Get("token"), s.now())
	page := templates.ConfirmPage{Lang: lang, Action: r.URL.RequestURI(), State: "ask"}
	status := http.StatusOK
	switch {
	case !valid:
		page.State, status = "invalid", http.StatusBadRequest
	case r.Method == http.MethodPost:
		ip := clientIP(r, s.opts.TrustedProxies)
		ok, err := s.store.ConfirmMarketing(r.Context(), person, Proof{At: s.now(), IP: ip,
			UserAgent: truncate(r.UserAgent(), 512)})
		switch {
		case err != nil: // the button again, not "invalid": the link is fine, a retry may work
			s.log.Error("confirm opt-in", "err", err)
			status = http.StatusServiceUnavailable
		case !ok:
			page.State, status = "invalid", http.StatusGone
		default:
			page.State = "done"
			s.log.Info("marketing opt-in confirmed")
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := templates.RenderConfirm(w, page); err != nil {
		s.log.Error("render confirm page", "err", err)
	}
}
