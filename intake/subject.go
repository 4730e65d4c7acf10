package intake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paymtech/leadgate/templates"
)

// Data-subject requests (privacy policy 9.2–9.3; Law 94-V, chapter 4): the
// privacy officer exports, rectifies, blocks, unblocks or erases what is
// held about a person, or withdraws their consent, in one call each. Every
// call is recorded as a request with a reference and a due date, and
// answers with both; the record holds no personal value.

const (
	// maxSubjectBody bounds a subject request's body: an address, a phone
	// and a few corrections.
	maxSubjectBody = 16 << 10
	// subjectTimeout bounds one request's work. It does not inherit the
	// client's deadline: an officer's client hanging up must not leave an
	// erasure half-asked of the CRMs.
	subjectTimeout = 30 * time.Second
	// defaultSubjectDue is SUBJECT_REQUEST_DUE's documented default, used
	// when Options.SubjectDue is zero.
	defaultSubjectDue = 3
	// withdrawalSource is the Proof.Source of a withdrawal made on request.
	withdrawalSource = "subject_request"
)

// Scopes of a withdrawal of consent.
const (
	ScopeMarketing  = "marketing"  // product news only
	ScopeProcessing = "processing" // processing as a whole: the person is blocked and their marketing consent withdrawn
)

// almaty is the time of the office that answers the requests: Kazakhstan
// has one zone, UTC+5, since 1 March 2024, without daylight saving. A fixed
// zone keeps due dates independent of the host's tzdata (before 2024a it
// still says UTC+6 for Asia/Almaty).
var almaty = time.FixedZone("Asia/Almaty", 5*60*60)

type monthDay struct {
	month time.Month
	day   int
}

// fixedHolidays are Kazakhstan's public holidays that fall on the same date
// every year: New Year (1–2 January), Orthodox Christmas (7 January),
// International Women's Day (8 March), Nauryz (21–23 March), Unity Day
// (1 May), Defender of the Fatherland Day (7 May), Victory Day (9 May),
// Capital Day (6 July), Constitution Day (30 August), Republic Day
// (25 October) and Independence Day (16 December).
//
// Not included: Kurban Ait, whose date follows the lunar calendar and is set
// each year, and the days off the government moves or adds by decree
// (a holiday falling on a weekend moves the day off to the next working
// day). Leaving them out can only make a due date earlier, never later than
// the law allows.
var fixedHolidays = map[monthDay]bool{
	{time.January, 1}: true, {time.January, 2}: true, {time.January, 7}: true,
	{time.March, 8}: true, {time.March, 21}: true, {time.March, 22}: true, {time.March, 23}: true,
	{time.May, 1}: true, {time.May, 7}: true, {time.May, 9}: true,
	{time.July, 6}: true, {time.August, 30}: true, {time.October, 25}: true, {time.December, 16}: true,
}

// isWorkingDay reports whether the Almaty date of d is a working day.
func isWorkingDay(d time.Time) bool {
	d = d.In(almaty)
	if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !fixedHolidays[monthDay{d.Month(), d.Day()}]
}

// dueDate is when a request received at received must be answered: the end
// (23:59:59 in Almaty) of the n-th working day after the day it came in. The
// day of receipt does not count, as a period set in days starts the day
// after its event. n <= 0 means defaultSubjectDue.
func dueDate(received time.Time, n int) time.Time {
	if n <= 0 {
		n = defaultSubjectDue
	}
	r := received.In(almaty)
	day := time.Date(r.Year(), r.Month(), r.Day(), 12, 0, 0, 0, almaty) // noon: AddDate never crosses a date line
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if isWorkingDay(day) {
			n--
		}
	}
	return time.Date(day.Year(), day.Month(), day.Day(), 23, 59, 59, 0, almaty)
}

// newReference draws a request reference, "SR-20261124-7F3A9C": the Almaty
// date it was received and 24 random bits, so it says nothing about whom
// it concerns and cannot be guessed.
func newReference(received time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return "SR-" + received.In(almaty).Format("20060102") + "-" + strings.ToUpper(hex.EncodeToString(b))
}

// registerSubjects adds the data-subject request routes (privacy role).
func (s *Server) registerSubjects(mux *http.ServeMux) {
	mux.Handle("POST /v1/admin/subjects/export", s.admin("privacy", s.subjectExport))
	mux.Handle("POST /v1/admin/subjects/rectify", s.admin("privacy", s.subjectRectify))
	mux.Handle("POST /v1/admin/subjects/block", s.admin("privacy", s.subjectBlock))
	mux.Handle("POST /v1/admin/subjects/unblock", s.admin("privacy", s.subjectUnblock))
	mux.Handle("POST /v1/admin/subjects/erase", s.admin("privacy", s.subjectErase))
	mux.Handle("POST /v1/admin/subjects/withdraw", s.admin("privacy", s.subjectWithdraw))
	mux.Handle("GET /v1/admin/subjects/requests", s.admin("privacy", s.subjectRequests))
}

// subjectAct does a request's work and returns what to answer besides the
// request's own fields, and a short outcome for its record (counts and
// field names, never a personal value).
type subjectAct func(ctx context.Context) (result map[string]any, outcome string, err error)

// handleSubject records a request, does its work and answers. A request
// whose work fails on an outside cause (Redis, the queue) stays open with
// the failure noted; sending it again with its "reference" finishes it.
// One that finds nobody, or that conflicts with another person's records,
// is closed with that outcome.
func (s *Server) handleSubject(w http.ResponseWriter, r *http.Request, kind, scope, reference, subject string, act subjectAct) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), subjectTimeout)
	defer cancel()
	req, err := s.openSubject(ctx, kind, scope, reference, subject, r)
	if err != nil {
		s.subjectError(w, nil, "record subject request", err)
		return
	}
	auditTarget(r, req.Reference)
	result, outcome, err := act(ctx)
	switch code := ErrorCode(err); {
	case err == nil:
	case code == ENotFound:
		outcome = "nothing held"
	case code == EConflict:
		var e *Error
		errors.As(err, &e)
		outcome = "refused: " + e.Message
	default:
		outcome = "failed: " + string(code)
		if code == "" {
			outcome = "failed: internal"
		}
		if nerr := s.store.NoteSubjectRequest(ctx, req.Reference, outcome); nerr != nil {
			s.log.Error("subject request: failure not noted", "reference", req.Reference, "err", nerr)
		}
		req.Outcome = outcome
		s.subjectError(w, req, "subject request "+kind, err)
		return
	}
	req.ClosedAt, req.Outcome = s.now().UTC(), outcome
	if cerr := s.store.CloseSubjectRequest(ctx, req.Reference, outcome, req.ClosedAt); cerr != nil {
		// The work is done and cannot be undone; the record says open until
		// the request is sent again with its reference.
		s.log.Error("subject request done but not closed", "reference", req.Reference, "err", cerr)
		req.ClosedAt = time.Time{}
	}
	holder, _ := Holder(r.Context())
	s.log.Info("subject request", "reference", req.Reference, "kind", kind, "scope", scope, "outcome", outcome, "by", holder.Name)
	if err != nil {
		s.subjectError(w, req, "subject request "+kind, err)
		return
	}
	body := subjectFields(req)
	for k, v := range result {
		body[k] = v
	}
	writeJSON(w, http.StatusOK, body)
}

// openSubject records a new request, or takes up an open one of the same
// kind and subject named by reference (one that failed half-way).
func (s *Server) openSubject(ctx context.Context, kind, scope, reference, subject string, r *http.Request) (*SubjectRequest, error) {
	if reference != "" {
		req, err := s.store.SubjectRequest(ctx, reference)
		switch {
		case ErrorCode(err) == ENotFound:
			return nil, &Error{Code: EInvalid, Message: "reference: no such subject request",
				Fields: FieldErrors{"reference": {Key: "field.invalid"}}}
		case err != nil:
			return nil, err
		case req.Kind != kind || req.Scope != scope || req.Subject != subject:
			return nil, &Error{Code: EInvalid, Message: "reference: that request was of another kind or about someone else",
				Fields: FieldErrors{"reference": {Key: "field.invalid"}}}
		case !req.ClosedAt.IsZero():
			return nil, &Error{Code: EConflict, Message: "reference: that request is closed already"}
		}
		return req, nil
	}
	received := s.now().UTC()
	holder, _ := Holder(r.Context())
	req := &SubjectRequest{Kind: kind, Scope: scope, ReceivedAt: received, DueAt: dueDate(received, s.opts.SubjectDue),
		Subject: subject, By: holder.Name}
	var err error
	for range 3 { // 24 random bits a day: a clash is rare, three in a row never
		req.Reference = newReference(received)
		if err = s.store.OpenSubjectRequest(ctx, *req); ErrorCode(err) != EConflict {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return req, nil
}

// subjectFields are the fields every answer about a request carries.
func subjectFields(req *SubjectRequest) map[string]any {
	body := map[string]any{"reference": req.Reference, "kind": req.Kind, "received_at": req.ReceivedAt.In(almaty),
		"due_at": req.DueAt.In(almaty), "state": "open"}
	if req.Scope != "" {
		body["scope"] = req.Scope
	}
	if !req.ClosedAt.IsZero() {
		body["state"], body["closed_at"] = "closed", req.ClosedAt.In(almaty)
	}
	if req.Outcome != "" {
		body["outcome"] = req.Outcome
	}
	return body
}

// subjectError answers an error of a subject request: the error, what is
// wrong with each field (in English: the reader is the privacy officer),
// and the request's reference and due date when it was recorded.
func (s *Server) subjectError(w http.ResponseWriter, req *SubjectRequest, op string, err error) {
	body := map[string]any{}
	if req != nil {
		body = subjectFields(req)
	}
	var e *Error
	if !errors.As(err, &e) {
		s.log.Error(op, "err", err)
		body["error"], body["message"] = "internal", "internal error"
		writeJSON(w, http.StatusInternalServerError, body)
		return
	}
	if e.Code == EUnavailable {
		s.log.Error(op, "err", err)
	}
	body["error"], body["message"] = string(e.Code), e.Message
	if len(e.Fields) > 0 {
		fields := map[string]string{}
		for name, p := range e.Fields {
			fields[name] = templates.Message(templates.EN, p.Key, p.Args...)
		}
		body["fields"] = fields
	}
	writeJSON(w, statusOf(e.Code), body)
}

// fieldError is a validation error of one field of a subject request.
func fieldError(field, key, message string, args ...any) *Error {
	return &Error{Code: EInvalid, Message: field + ": " + message, Fields: FieldErrors{field: {Key: key, Args: args}}}
}

// checkEmail validates an address given in a subject request and returns
// its normalised form.
func checkEmail(field, email string) (string, error) {
	switch {
	case email == "":
		return "", fieldError(field, "field.required", "give the person's email address")
	case len(email) > 254:
		return "", fieldError(field, "email.too_long", "longer than 254 characters")
	}
	key, err := NormalizeEmail(email)
	if errors.Is(err, ErrEmailMultiple) {
		return "", fieldError(field, "email.multiple", "give one address")
	} else if err != nil {
		return "", fieldError(field, "email.invalid", "not a valid email address")
	}
	return key, nil
}

// personOf validates the email of a request and returns the person hash.
func (s *Server) personOf(email string) (string, error) {
	key, err := checkEmail("email", strings.TrimSpace(email))
	if err != nil {
		return "", err
	}
	person, _ := s.store.PersonOf(key)
	return person, nil
}

// subjectExport answers POST /v1/admin/subjects/export {"email"} or
// {"phone"}: everything held about the person (or, by phone, every person
// who gave it): profile, requests, consent history with its proof, every
// transfer, every email sent. 404 when nothing is held.
func (s *Server) subjectExport(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Email     string `json:"email"`
		Phone     string `json:"phone"`
		Reference string `json:"reference"`
	}
	if err := decodeAdmin(w, r, maxSubjectBody, &b); err != nil {
		s.subjectError(w, nil, "export", err)
		return
	}
	b.Email, b.Phone = strings.TrimSpace(b.Email), strings.TrimSpace(b.Phone)
	var people []string
	var subject string
	switch {
	case b.Email != "" && b.Phone != "":
		s.subjectError(w, nil, "export", &Error{Code: EInvalid, Message: "give email or phone, not both",
			Fields: FieldErrors{"phone": {Key: "field.invalid"}}})
		return
	case b.Phone != "":
		phone, err := NormalizePhone(b.Phone)
		if err != nil || len(b.Phone) > 40 {
			s.subjectError(w, nil, "export", fieldError("phone", "phone.invalid", "not a valid phone number"))
			return
		}
		subject = s.store.SubjectKey("phone", s.store.keys.Index("phone", phone))
		s.handleSubject(w, r, SubjectExport, "", b.Reference, subject, func(ctx context.Context) (map[string]any, string, error) {
			people, err := s.store.PeopleByPhone(ctx, phone)
			if err != nil {
				return nil, "", err
			}
			return s.export(ctx, people)
		})
		return
	default:
		person, err := s.personOf(b.Email)
		if err != nil {
			s.subjectError(w, nil, "export", err)
			return
		}
		people, subject = []string{person}, s.store.SubjectKey("email", person)
	}
	s.handleSubject(w, r, SubjectExport, "", b.Reference, subject, func(ctx context.Context) (map[string]any, string, error) {
		return s.export(ctx, people)
	})
}

// subjectView is one person's data as an export shows it.
type subjectView struct {
	Profile   SubjectProfile  `json:"profile"`
	Leads     []leadView      `json:"leads"`
	Consents  []ConsentRecord `json:"consents"`
	Transfers []transferView  `json:"transfers"`
	Emails    []emailView     `json:"emails"`
}

// transferView is one entry of a lead's disclosure log, named with its lead.
type transferView struct {
	Lead string `json:"lead"`
	Transfer
}

// emailView is one email sent to the person: a campaign or notice (Ref
// names it), or mail about one of their requests (Lead and Purpose).
type emailView struct {
	Kind    string    `json:"kind"` // campaign, breach_notice, request
	Ref     string    `json:"ref,omitempty"`
	Lead    string    `json:"lead,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
	At      time.Time `json:"at"`
}

// export gathers what is held about people; ENotFound when nothing.
func (s *Server) export(ctx context.Context, people []string) (map[string]any, string, error) {
	views := []subjectView{}
	leads := 0
	for _, p := range people {
		sub, err := s.store.Subject(ctx, p)
		if ErrorCode(err) == ENotFound {
			continue
		} else if err != nil {
			return nil, "", err
		}
		v := subjectView{Profile: sub.Profile, Leads: []leadView{}, Consents: sub.Consents, Transfers: []transferView{},
			Emails: []emailView{}}
		if v.Consents == nil {
			v.Consents = []ConsentRecord{}
		}
		for _, l := range sub.Leads {
			v.Leads = append(v.Leads, viewOf(l))
			for _, t := range l.Transfers {
				v.Transfers = append(v.Transfers, transferView{Lead: l.ID, Transfer: t})
				if t.Recipient == "mail" {
					v.Emails = append(v.Emails, emailView{Kind: "request", Lead: l.ID, Purpose: t.Purpose, At: t.At})
				}
			}
		}
		for _, m := range sub.Mail {
			v.Emails = append(v.Emails, emailView{Kind: m.Kind, Ref: m.Ref, At: m.At})
		}
		sort.SliceStable(v.Transfers, func(i, j int) bool { return v.Transfers[i].At.Before(v.Transfers[j].At) })
		sort.SliceStable(v.Emails, func(i, j int) bool { return v.Emails[i].At.Before(v.Emails[j].At) })
		leads += len(v.Leads)
		views = append(views, v)
	}
	if len(views) == 0 {
		return nil, "", notHeld()
	}
	return map[string]any{"people": views}, fmt.Sprintf("exported: people=%d leads=%d", len(views), leads), nil
}

// subjectRectify answers POST /v1/admin/subjects/rectify
// {"email","changes":{"name"|"phone"|"email"|"lang":…}}: every request of
// the person and their profile get the corrections, which are passed on to
// the CRMs holding copies (where the driver can). A new email moves the
// person to its hash; 409 when that address is another person's.
func (s *Server) subjectRectify(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Email     string                     `json:"email"`
		Changes   map[string]json.RawMessage `json:"changes"`
		Reference string                     `json:"reference"`
	}
	if err := decodeAdmin(w, r, maxSubjectBody, &b); err != nil {
		s.subjectError(w, nil, "rectify", err)
		return
	}
	person, err := s.personOf(b.Email)
	if err != nil {
		s.subjectError(w, nil, "rectify", err)
		return
	}
	changes, names, err := parseChanges(b.Changes)
	if err != nil {
		s.subjectError(w, nil, "rectify", err)
		return
	}
	s.handleSubject(w, r, SubjectRectify, "", b.Reference, s.store.SubjectKey("email", person),
		func(ctx context.Context) (map[string]any, string, error) {
			rect, err := s.store.Rectify(ctx, person, changes)
			if err != nil {
				return nil, "", err
			}
			queued := 0
			for _, id := range rect.CRM {
				if err := s.queue.EnqueueCRMUpdate(ctx, id); err != nil {
					s.log.Error("rectify: the CRM correction could not be queued; send the request again with its reference",
						"lead", id, "err", err)
					continue
				}
				queued++
			}
			result := map[string]any{"changed": names, "leads": len(rect.Leads), "moved": rect.Moved,
				"crm_updates": queued}
			outcome := fmt.Sprintf("rectified: fields=%s leads=%d crm_updates=%d", strings.Join(names, ","), len(rect.Leads), queued)
			if missed := len(rect.CRM) - queued; missed > 0 {
				// Corrected here, which cannot be undone; the answer and the
				// record say what did not reach the CRM, to be corrected there
				// by hand (the error log names the leads).
				result["crm_updates_not_queued"] = missed
				outcome += fmt.Sprintf(" crm_updates_not_queued=%d", missed)
			}
			return result, outcome, nil
		})
}

// parseChanges validates the corrections of a rectification as the form
// validates a request, and returns them with the names of the fields
// changed (sorted).
func parseChanges(raw map[string]json.RawMessage) (Changes, []string, error) {
	var c Changes
	if len(raw) == 0 {
		return c, nil, &Error{Code: EInvalid, Message: "changes: nothing to change; give name, phone, email or lang",
			Fields: FieldErrors{"changes": {Key: "field.required"}}}
	}
	fields := FieldErrors{}
	var names []string
	for name, v := range raw {
		var str string
		if !slices.Contains([]string{"name", "phone", "email", "lang"}, name) {
			fields["changes"] = Problem{Key: "field.invalid"}
			continue
		}
		if err := json.Unmarshal(v, &str); err != nil {
			fields["changes."+name] = Problem{Key: "field.invalid"}
			continue
		}
		str = strings.TrimSpace(str)
		names = append(names, name)
		switch name {
		case "name":
			if n := utf8.RuneCountInString(str); n > 200 {
				fields["changes.name"] = Problem{Key: "field.too_long", Args: []any{200}}
			} else if !isText(str, false) {
				fields["changes.name"] = Problem{Key: "name.invalid"}
			}
			c.Name = &str
		case "phone":
			phone, err := NormalizePhone(str)
			switch {
			case str == "":
				fields["changes.phone"] = Problem{Key: "field.required"}
			case len(str) > 40:
				fields["changes.phone"] = Problem{Key: "phone.too_long"}
			case err != nil:
				fields["changes.phone"] = Problem{Key: "phone.invalid"}
			}
			c.Phone = &phone
		case "email":
			if _, err := checkEmail("changes.email", str); err != nil {
				fields["changes.email"] = err.(*Error).Fields["changes.email"]
			}
			c.Email = &str
		case "lang":
			str = strings.ToLower(str)
			if str != "kk" && str != "ru" && str != "en" {
				fields["changes.lang"] = Problem{Key: "lang.invalid"}
			}
			c.Lang = &str
		}
	}
	if len(fields) > 0 {
		msg := "changes: only name, phone, email and lang can be changed, each a string"
		if _, unknown := fields["changes"]; !unknown {
			msg = "invalid " + strings.Join(slices.Sorted(maps.Keys(fields)), ", ")
		}
		return c, nil, &Error{Code: EInvalid, Message: msg, Fields: fields}
	}
	slices.Sort(names)
	return c, names, nil
}

// subjectBlock answers POST /v1/admin/subjects/block {"email"}: processing
// stops (no routing, no mail, no campaign), storage stays.
func (s *Server) subjectBlock(w http.ResponseWriter, r *http.Request) {
	s.personRequest(w, r, SubjectBlock, func(ctx context.Context, person string) (map[string]any, string, error) {
		moved, err := s.store.Block(ctx, person)
		if err != nil {
			return nil, "", err
		}
		return map[string]any{"leads_blocked": len(moved)}, fmt.Sprintf("blocked: leads=%d", len(moved)), nil
	})
}

// subjectUnblock answers POST /v1/admin/subjects/unblock {"email"}: the
// block is lifted, each lead goes back to where it was, and those still to
// be routed are queued again.
func (s *Server) subjectUnblock(w http.ResponseWriter, r *http.Request) {
	s.personRequest(w, r, SubjectUnblock, func(ctx context.Context, person string) (map[string]any, string, error) {
		restored, received, err := s.store.Unblock(ctx, person)
		if err != nil {
			return nil, "", err
		}
		queued := 0
		for _, id := range received {
			if err := s.queue.EnqueueLead(ctx, id); err != nil {
				// The lead is received again: the sweeper queues it within minutes.
				s.log.Error("unblock: requeue failed; the sweeper will queue the lead", "lead", id, "err", err)
				continue
			}
			queued++
		}
		return map[string]any{"leads_restored": restored, "requeued": queued},
			fmt.Sprintf("unblocked: leads=%d requeued=%d", restored, queued), nil
	})
}

// subjectErase answers POST /v1/admin/subjects/erase {"email"}: everything
// held about the person is destroyed at once, the CRMs holding copies are
// asked to delete them, and only the person's keyed hash stays, on the
// suppression list.
func (s *Server) subjectErase(w http.ResponseWriter, r *http.Request) {
	s.personRequest(w, r, SubjectErase, func(ctx context.Context, person string) (map[string]any, string, error) {
		// The CRM deletions are queued first: once the leads are gone,
		// nothing would say which CRM holds what.
		e, err := s.store.Erase(ctx, person, func(ctx context.Context, copies []CRMCopy) error {
			for _, c := range copies {
				if err := s.queue.EnqueueCRMErase(ctx, c.Lead, c.System, c.Ref); err != nil {
					return unavailable("queue CRM erasure", err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, "", err
		}
		return map[string]any{"leads_erased": len(e.Leads), "crm_erasures": len(e.CRM)},
			fmt.Sprintf("erased: leads=%d crm_erasures=%d", len(e.Leads), len(e.CRM)), nil
	})
}

// subjectWithdraw answers POST /v1/admin/subjects/withdraw
// {"email","scope"}: marketing ends the person's consent to product news;
// processing also blocks them.
func (s *Server) subjectWithdraw(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Email     string `json:"email"`
		Scope     string `json:"scope"`
		Reference string `json:"reference"`
	}
	if err := decodeAdmin(w, r, maxSubjectBody, &b); err != nil {
		s.subjectError(w, nil, "withdraw", err)
		return
	}
	person, err := s.personOf(b.Email)
	if err != nil {
		s.subjectError(w, nil, "withdraw", err)
		return
	}
	scope := strings.ToLower(strings.TrimSpace(b.Scope))
	if scope != ScopeMarketing && scope != ScopeProcessing {
		s.subjectError(w, nil, "withdraw", fieldError("scope", "field.invalid", "must be marketing or processing"))
		return
	}
	s.handleSubject(w, r, SubjectWithdraw, scope, b.Reference, s.store.SubjectKey("email", person),
		func(ctx context.Context) (map[string]any, string, error) {
			held, err := s.store.Held(ctx, person)
			if err != nil {
				return nil, "", err
			} else if !held {
				return nil, "", notHeld()
			}
			result := map[string]any{}
			outcome := "withdrawn: " + scope
			if scope == ScopeProcessing {
				moved, err := s.store.Block(ctx, person)
				if err != nil {
					return nil, "", err
				}
				result["leads_blocked"] = len(moved)
				outcome += fmt.Sprintf(" leads_blocked=%d", len(moved))
			}
			had, err := s.store.Withdraw(ctx, person, Proof{At: s.now().UTC(), Source: withdrawalSource})
			if err != nil {
				return nil, "", err
			}
			result["marketing_withdrawn"] = had
			return result, outcome + " marketing_withdrawn=" + strconv.FormatBool(had), nil
		})
}

// personRequest handles a request whose body is {"email"} (and optionally
// the "reference" of an open request to finish).
func (s *Server) personRequest(w http.ResponseWriter, r *http.Request, kind string,
	act func(ctx context.Context, person string) (map[string]any, string, error)) {
	var b struct {
		Email     string `json:"email"`
		Reference string `json:"reference"`
	}
	if err := decodeAdmin(w, r, maxSubjectBody, &b); err != nil {
		s.subjectError(w, nil, kind, err)
		return
	}
	person, err := s.personOf(b.Email)
	if err != nil {
		s.subjectError(w, nil, kind, err)
		return
	}
	s.handleSubject(w, r, kind, "", b.Reference, s.store.SubjectKey("email", person),
		func(ctx context.Context) (map[string]any, string, error) { return act(ctx, person) })
}

// subjectRequests answers GET /v1/admin/subjects/requests?cursor=&limit=:
// open and closed requests, newest first, with reference, kind, received
// and due dates, state and outcome.
func (s *Server) subjectRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > subjectMaxListLimit {
			s.subjectError(w, nil, "list subject requests", fieldError("limit", "field.invalid",
				fmt.Sprintf("must be 1 to %d", subjectMaxListLimit)))
			return
		}
		limit = n
	}
	reqs, next, err := s.store.SubjectRequests(r.Context(), q.Get("cursor"), limit)
	if err != nil {
		s.subjectError(w, nil, "list subject requests", err)
		return
	}
	now := s.now()
	list := make([]map[string]any, len(reqs))
	for i := range reqs {
		v := subjectFields(&reqs[i])
		v["by"] = reqs[i].By
		v["overdue"] = reqs[i].ClosedAt.IsZero() && now.After(reqs[i].DueAt)
		list[i] = v
	}
	body := map[string]any{"requests": list}
	if next != "" {
		body["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, body)
}
