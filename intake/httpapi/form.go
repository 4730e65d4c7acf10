package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/templates"
)

// MaxBody is the largest request body accepted; more is 413.
const MaxBody = 64 << 10

// formPage answers GET /: the form. The utm_* tags of its own address —
// marketing's link to the page — go into hidden fields, so the request
// carries them (a framing page's tags are its own to pass on).
func (s *Server) formPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tags := map[string]string{}
	for _, name := range templates.TagFields {
		if v := form.PageTag(q.Get(name)); v != "" {
			tags[name] = v
		}
	}
	s.renderForm(w, http.StatusOK, s.lang(r), nil, nil, "", cameFrom(r), tags)
}

// leadsPath is where the form posts; see cameFrom.
const leadsPath = "/v1/leads"

// cameFrom is the page the visitor came from, as the request's Referer
// tells it: the page that framed or linked to the form when the form is
// opened, the form page itself when it is posted. The form's own post
// address is no such page — a re-post from the form shown again after an
// error has it as its Referer — so it gives "", as does anything
// pageAddress drops.
func cameFrom(r *http.Request) string {
	ref := pageAddress(truncate(r.Referer(), 2000))
	if u, err := url.Parse(ref); err == nil && u.Host == r.Host && u.Path == leadsPath {
		return ""
	}
	return ref
}

func (s *Server) thanksPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := templates.RenderThanks(w, templates.ThanksPage{Lang: s.lang(r), Company: s.opts.Company,
		Reference: r.URL.Query().Get("ref")}); err != nil {
		s.log.Error("render thanks page", "err", err)
	}
}

// renderForm shows the form, re-filled with what the person typed and the
// problems found, when there are any. pageURL is the page the visitor came
// from (see cameFrom), used when f brings none: it goes into the hidden
// page_url field so that it is kept through every re-render. tags are the
// utm_* values of a fresh form (f nil; a re-render keeps f's).
func (s *Server) renderForm(w http.ResponseWriter, status int, lang templates.Lang, f *form.Form, fields intake.FieldErrors, notice, pageURL string, tags map[string]string) {
	page := templates.FormPage{Lang: lang, Action: leadsPath, Path: "/", Values: map[string]string{"lang": string(lang), "page_url": pageURL},
		Errors: map[string]string{}, Notice: notice, PolicyURL: s.opts.policyURL(lang), PolicyVersion: s.opts.PolicyVersion,
		FormToken: s.Keys.FormToken(s.now()), Company: s.opts.Company}
	for name, p := range fields {
		page.Errors[name] = templates.Message(lang, p.Key, p.Args...)
	}
	for k, v := range tags {
		page.Values[k] = v
	}
	var ticked []string
	if f != nil {
		page.Rerender = true
		ticked = f.Products
		for k, v := range map[string]string{"entity_type": f.EntityType, "name": f.Name, "phone": f.Phone,
			"email": f.Email, "tax_id": f.TaxID, "message": f.Message,
			"consent_processing": strconv.FormatBool(bool(f.ConsentProcessing)),
			"consent_marketing":  strconv.FormatBool(bool(f.ConsentMarketing)),
			"page_url":           f.PageURL, "timezone": f.Timezone, "utm_source": f.UTMSource,
			"utm_medium": f.UTMMedium, "utm_campaign": f.UTMCampaign, "redirect_url": f.RedirectURL} {
			page.Values[k] = v
		}
		if f.PageURL == "" {
			page.Values["page_url"] = pageURL
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
		s.writeError(w, "preflight", &intake.Error{Code: intake.EForbiddenOrigin, Message: "cross-site request from an origin that is not allowed"}, nil, s.lang(r))
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
// stored and queued: one Redis call (Leads.Accept) does both, appending the
// lead to the admission stream that the workers move into asynq.
func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	lang, browser := s.lang(r), wantsHTML(r)
	origin, crossSite, ok := s.origins.check(r)
	if !ok {
		s.fail(w, r, lang, browser, nil, &intake.Error{Code: intake.EForbiddenOrigin, Message: "cross-site post from an origin that is not allowed"})
		return
	}
	if crossSite {
		allowCORS(w, origin)
	}
	f, err := decodeForm(w, r)
	if err != nil {
		s.fail(w, r, lang, browser, nil, err)
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
		fields = intake.FieldErrors{"redirect_url": {Key: "redirect_url.forbidden"}}
	}
	if fields != nil {
		s.fail(w, r, lang, browser, f, &intake.Error{Code: intake.EInvalid, Message: "validation failed", Fields: fields})
		return
	}
	if sub.Lang == "" {
		sub.Lang = string(lang)
	}
	app := s.application(r, sub)
	app.Observed = s.observe(r, f)
	app.ID = uuid.Must(uuid.NewV7()).String() // time-ordered: newest-first listings sort by id
	adm, err := s.Leads.Accept(r.Context(), app)
	if errors.Is(err, intake.ErrOutcomeUnknown) {
		adm, err = s.settle(r.Context(), app.ID, err)
	}
	if err != nil {
		s.fail(w, r, lang, browser, f, err)
		return
	}
	// LogAttrs: the line of every accepted lead, without boxing its values.
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "lead accepted", slog.String("lead", adm.ID),
		slog.Bool("duplicate", adm.Duplicate), slog.String("entity_type", sub.EntityType))
	s.accepted(w, r, lang, browser, f, adm.ID, adm.Duplicate)
}

// settleBudget is how long settle keeps asking Redis when Options leaves it
// zero: long enough for a restarting Redis or a Sentinel failover to
// answer, short enough that the sender is not kept waiting long.
const settleBudget = 3 * time.Second

// admissionUnknown counts the submissions whose fate settle could not learn.
var admissionUnknown = promauto.NewCounter(prometheus.CounterOpts{
	Name: "leadgate_admission_unknown_total",
	Help: "Submissions answered 503 although their lead may have been stored and queued: the accept call lost its answer and Redis did not answer the look-up in time.",
})

// settle learns what became of the lead id whose accept call lost its
// answer (cause): the call may have stored and queued it. It asks Redis
// (Leads.Admitted), backing off, for at most settleBudget: stored, the
// answer is the 202 it would have had; not stored, the call can never
// store it any more (Admitted voids the id) and the answer is 503. When
// Redis does not answer in time the answer is 503 too, but the lead may
// be stored and delivered: that case is counted and logged.
func (s *Server) settle(ctx context.Context, id string, cause error) (*intake.Admission, error) {
	budget := s.opts.SettleBudget
	if budget == 0 {
		budget = settleBudget
	}
	// Not the request's context: a sender hanging up leaves the outcome
	// just as open, and the count must say so.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	pause := 50 * time.Millisecond
	for {
		adm, err := s.Leads.Admitted(ctx, id)
		switch {
		case err == nil && adm != nil:
			s.log.Warn("accept call lost its answer; the lead was stored", "lead", id)
			return adm, nil
		case err == nil:
			s.log.Warn("accept call lost its answer; the lead was not stored", "lead", id)
			return nil, cause
		}
		select {
		case <-ctx.Done():
			admissionUnknown.Inc()
			s.log.Error("accept call lost its answer and Redis did not answer in time: answered 503, yet the lead may be stored and delivered",
				"lead", id, "err", err)
			return nil, cause
		case <-time.After(pause):
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// application gathers what the server records with a submission (policy 2.3)
// and the consent proof.
func (s *Server) application(r *http.Request, sub *intake.Submission) intake.Application {
	now := s.now().UTC()
	ua := truncate(r.UserAgent(), 512)
	// The Referer stands in only for a page_url not given; a page_url given
	// but dropped leaves no page address at all, rather than one the form
	// did not claim.
	page := pageAddress(sub.PageURL)
	if sub.PageURL == "" {
		page = cameFrom(r)
	}
	sub.PageURL = page // the submission is stored and sent on as it is now
	meta := intake.Metadata{IP: clientIP(r, s.opts.TrustedProxies), UserAgent: ua, Timezone: sub.Timezone, PageURL: page,
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
	// The policy recorded is the one of the language the consent was given
	// in (submit has set sub.Lang by now).
	lang, _ := templates.ParseLang(sub.Lang)
	return intake.Application{
		Submission: sub,
		Consent: intake.Consent{Processing: true, Marketing: sub.ConsentMarketing, PolicyVersion: s.opts.PolicyVersion,
			PolicyURL: s.opts.policyURL(lang), GivenAt: now, IP: meta.IP, UserAgent: ua, PageURL: page},
		Meta:           meta,
		IdempotencyKey: truncate(r.Header.Get("Idempotency-Key"), 255),
		PerIP:          s.opts.PerIP,
		PerEmail:       s.opts.PerEmail,
		DoubleOptIn:    s.opts.DoubleOptIn,
	}
}

// observe notes what the anti-fraud score looks at; the store adds the
// repeat counts.
func (s *Server) observe(r *http.Request, f *form.Form) intake.Observed {
	o := intake.Observed{HoneypotNearMiss: f.Website != "", ScriptRan: f.Timezone != "", BrowserPost: wantsHTML(r)}
	if f.FormToken != "" {
		o.FormAge, o.FormTokenInvalid = s.Keys.FormTokenAge(f.FormToken, s.now())
	}
	return o
}

func (s *Server) accepted(w http.ResponseWriter, r *http.Request, lang templates.Lang, browser bool, f *form.Form, id string, duplicate bool) {
	if browser {
		// The thanks page shows the reference the 202 would give a script:
		// the lead id is no personal data (it opens nothing without an
		// admin token), and the page shows it only as a UUID.
		target := "/thanks?" + url.Values{"lang": {string(lang)}, "ref": {id}}.Encode()
		if f.RedirectURL != "" && s.origins.allowsRedirect(f.RedirectURL) {
			target = f.RedirectURL
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedBody{ID: id, Status: "accepted", Duplicate: duplicate})
}

// acceptedBody is the 202's answer to a script.
type acceptedBody struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// decodeForm reads a JSON or urlencoded body of at most MaxBody bytes.
func decodeForm(w http.ResponseWriter, r *http.Request) (*form.Form, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mediaType != "application/json" && mediaType != "application/x-www-form-urlencoded") {
		return nil, &intake.Error{Code: intake.EUnsupported, Message: "send application/json or application/x-www-form-urlencoded"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &intake.Error{Code: intake.ETooLarge, Message: "body over 64 KiB"}
		}
		return nil, &intake.Error{Code: intake.EBadRequest, Message: "could not read the body"}
	}
	f := &form.Form{}
	if mediaType == "application/json" {
		// Decoded first: a body it takes is well-formed, so the walk for
		// repeated keys needs no syntax check of its own (scanRepeatedKey);
		// one it refuses is walked for a repeat before the fault, which
		// is the answer then.
		if err = json.Unmarshal(body, f); err == nil {
			if key := scanRepeatedKey(body); key != "" {
				return nil, repeated(key)
			}
			return f, nil
		}
		if key, syntaxErr := repeatedKey(body); syntaxErr != nil {
			return nil, &intake.Error{Code: intake.EBadRequest, Message: "malformed JSON"}
		} else if key != "" {
			return nil, repeated(key)
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			name, _, _ := strings.Cut(typeErr.Field, ".")
			return nil, &intake.Error{Code: intake.EInvalid, Message: "a field has the wrong JSON type",
				Fields: intake.FieldErrors{name: {Key: "field.invalid"}}}
		}
		return nil, &intake.Error{Code: intake.EBadRequest, Message: "malformed JSON"}
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &intake.Error{Code: intake.EBadRequest, Message: "malformed form body"}
	}
	for _, name := range singleValued {
		if len(v[name]) > 1 {
			return nil, repeated(name)
		}
	}
	*f = form.Form{EntityType: v.Get("entity_type"), Name: v.Get("name"), Phone: v.Get("phone"), Email: v.Get("email"),
		TaxID: v.Get("tax_id"), Products: append(v["products"], v["products[]"]...), Message: v.Get("message"),
		Lang: v.Get("lang"), ConsentProcessing: form.ParseFlag(v.Get("consent_processing")),
		ConsentMarketing: form.ParseFlag(v.Get("consent_marketing")), PageURL: v.Get("page_url"),
		Timezone: v.Get("timezone"), UTMSource: v.Get("utm_source"), UTMMedium: v.Get("utm_medium"),
		UTMCampaign: v.Get("utm_campaign"), RedirectURL: v.Get("redirect_url"), FormToken: v.Get("form_token"),
		Website: v.Get("website")}
	return f, nil
}

// singleValued are the form fields that take one value: every field of
// form.Form but products, the one list (also spelt products[] by some form
// builders).
var singleValued = func() []string {
	var names []string
	t := reflect.TypeFor[form.Form]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && name != "products" {
			names = append(names, name)
		}
	}
	return names
}()

// repeated is the answer to a field given twice: which value was meant is
// unknowable, and keeping one silently (the first, as url.Values.Get does,
// the last, as encoding/json does) lets whatever sits between the page and
// us — a script, a proxy, an extension appending to the body — decide for
// the person. The field is named, its values never.
func repeated(name string) error {
	return &intake.Error{Code: intake.EBadRequest, Message: fmt.Sprintf("field %q is given more than once; only products may repeat", name),
		Fields: intake.FieldErrors{name: {Key: "field.invalid"}}}
}

// pageAddress is raw when it is an absolute http or https URL, else "". The
// page address travels to the CRM and is shown to sales as a link, so a
// javascript: or data: URL, a relative path or anything unparsable is
// dropped — not refused: the request itself is still good.
func pageAddress(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return raw
}
