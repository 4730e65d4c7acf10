// Package privacy runs data-subject requests (privacy policy 9.2–9.3; Law
// 94-V, chapter 4): the privacy officer exports, rectifies, blocks,
// unblocks or erases what is held about a person, or withdraws their
// consent, in one call each. Every call is recorded as a request with a
// reference and a due date, and answered with both; the record holds no
// personal value.
//
// The workflow depends only on the interfaces below, so its rules are
// tested without HTTP; httpapi decodes the officer's calls into an Ask and
// encodes the Answer.
package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
)

// withdrawalSource is the Proof.Source of a withdrawal made on request.
const withdrawalSource = "subject_request"

// Records are the request records and the work on a person's records that
// spans the whole store (redisstore.Subjects).
type Records interface {
	// SubjectKey is how request records name a person (kind "email", the
	// person hash) or a phone (kind "phone", its lookup hash).
	SubjectKey(kind, lookup string) string
	OpenSubjectRequest(ctx context.Context, r intake.SubjectRequest) error
	SubjectRequest(ctx context.Context, ref string) (*intake.SubjectRequest, error)
	CloseSubjectRequest(ctx context.Context, ref, outcome string, at time.Time) error
	NoteSubjectRequest(ctx context.Context, ref, outcome string) error
	SubjectRequests(ctx context.Context, which intake.RequestsOf, cursor string, limit int) ([]intake.SubjectRequest, string, error)
	Subject(ctx context.Context, person string) (*intake.Subject, error)
	Rectify(ctx context.Context, person string, c intake.Changes) (*intake.Rectification, error)
	Erase(ctx context.Context, person string, beforeDestroy func(context.Context, []intake.CRMCopy) error) (*intake.Erasure, error)
}

// People are the person-level operations (redisstore.People).
type People interface {
	PersonOf(email string) (person string, ok bool)
	PhoneOf(phone string) string
	Held(ctx context.Context, person string) (bool, error)
	PeopleByPhone(ctx context.Context, phone string) ([]string, error)
	Block(ctx context.Context, person string) ([]string, error)
	Unblock(ctx context.Context, person string) (restored int, received []string, err error)
	Withdraw(ctx context.Context, person string, p intake.Proof) (bool, error)
}

// Queue is the work a request sends after a person's leads.
type Queue interface {
	EnqueueLead(ctx context.Context, id string) error
	EnqueueCRMUpdate(ctx context.Context, id string) error
	EnqueueCRMErase(ctx context.Context, id, system, ref string) error
}

// Service handles data-subject requests.
type Service struct {
	Records Records
	People  People
	Queue   Queue
	Due     int              // SUBJECT_REQUEST_DUE: working days to answer; zero means DefaultDue
	Now     func() time.Time // the clock
	Log     *slog.Logger
}

// Ask is one request as the privacy officer makes it.
type Ask struct {
	Kind  intake.SubjectKind
	Email string // whom it is about
	Phone string // an export by phone instead: everyone who gave it
	// Scope of a withdrawal: intake.ScopeMarketing or intake.ScopeProcessing.
	Scope string
	// Changes of a rectification: name, phone, email and lang, each a
	// string (ParseChanges).
	Changes map[string]json.RawMessage
	// Reference names an open request (one that failed half-way) that this
	// one finishes; empty records a new request.
	Reference string
	By        string // the officer's token name
}

// Answer is a request handled: its record, what it did as the fields of
// the answer (counts and field names, never a personal value), and for an
// export what is held.
type Answer struct {
	Request *intake.SubjectRequest
	Result  map[string]any
	People  []*intake.Subject // an export's people, decrypted; nil for other kinds
}

// act is a request's work: what to answer besides the request's own
// fields, and a short outcome for its record.
type act func(ctx context.Context, a *Answer) (outcome string, err error)

// Handle validates ask, records the request (or takes up the open one its
// Reference names), does its work and closes it. An error before the
// request is recorded comes with a nil Answer; after, with the Answer whose
// Request says how it stands. A request whose work fails on an outside
// cause (Redis, the queue) stays open with the failure noted; asking again
// with its Reference finishes it. One that finds nobody, or that conflicts
// with another person's records, is closed with that outcome.
func (s *Service) Handle(ctx context.Context, ask Ask) (*Answer, error) {
	subject, work, err := s.plan(ask)
	if err != nil {
		return nil, err
	}
	req, err := s.open(ctx, ask, subject)
	if err != nil {
		return nil, err
	}
	ans := &Answer{Request: req}
	outcome, err := work(ctx, ans)
	switch code := intake.ErrorCode(err); {
	case err == nil:
	case code == intake.ENotFound:
		outcome = "nothing held"
	case code == intake.EConflict:
		var e *intake.Error
		errors.As(err, &e)
		outcome = "refused: " + e.Message
	default:
		outcome = "failed: " + string(code)
		if code == "" {
			outcome = "failed: internal"
		}
		if nerr := s.Records.NoteSubjectRequest(ctx, req.Reference, outcome); nerr != nil {
			s.Log.Error("subject request: failure not noted", "reference", req.Reference, "err", nerr)
		}
		req.Outcome = outcome
		return ans, err
	}
	req.ClosedAt, req.Outcome = s.Now().UTC(), outcome
	if cerr := s.Records.CloseSubjectRequest(ctx, req.Reference, outcome, req.ClosedAt); cerr != nil {
		// The work is done and cannot be undone; the record says open until
		// the request is sent again with its reference.
		s.Log.Error("subject request done but not closed", "reference", req.Reference, "err", cerr)
		req.ClosedAt = time.Time{}
	}
	s.Log.Info("subject request", "reference", req.Reference, "kind", ask.Kind, "scope", ask.Scope, "outcome", outcome, "by", ask.By)
	return ans, err
}

// Requests lists up to limit requests of which kind, newest first,
// continuing after cursor (an earlier page's next; "" for the first).
func (s *Service) Requests(ctx context.Context, which intake.RequestsOf, cursor string, limit int) ([]intake.SubjectRequest, string, error) {
	return s.Records.SubjectRequests(ctx, which, cursor, limit)
}

// plan validates ask and returns whom its record names and its work.
func (s *Service) plan(ask Ask) (subject string, work act, err error) {
	if ask.Kind == intake.SubjectExport && strings.TrimSpace(ask.Phone) != "" {
		if strings.TrimSpace(ask.Email) != "" {
			return "", nil, &intake.Error{Code: intake.EInvalid, Message: "give email or phone, not both",
				Fields: intake.FieldErrors{"phone": {Key: "field.invalid"}}}
		}
		phone, err := form.NormalizePhone(strings.TrimSpace(ask.Phone))
		if err != nil || len(strings.TrimSpace(ask.Phone)) > 40 {
			return "", nil, fieldError("phone", "phone.invalid", "not a valid phone number")
		}
		return s.Records.SubjectKey("phone", s.People.PhoneOf(phone)), func(ctx context.Context, a *Answer) (string, error) {
			people, err := s.People.PeopleByPhone(ctx, phone)
			if err != nil {
				return "", err
			}
			return s.export(ctx, a, people)
		}, nil
	}
	person, err := s.personOf(ask.Email)
	if err != nil {
		return "", nil, err
	}
	subject = s.Records.SubjectKey("email", person)
	switch ask.Kind {
	case intake.SubjectExport:
		return subject, func(ctx context.Context, a *Answer) (string, error) { return s.export(ctx, a, []string{person}) }, nil
	case intake.SubjectRectify:
		changes, names, err := ParseChanges(ask.Changes)
		if err != nil {
			return "", nil, err
		}
		return subject, func(ctx context.Context, a *Answer) (string, error) { return s.rectify(ctx, a, person, changes, names) }, nil
	case intake.SubjectBlock:
		return subject, func(ctx context.Context, a *Answer) (string, error) { return s.block(ctx, a, person) }, nil
	case intake.SubjectUnblock:
		return subject, func(ctx context.Context, a *Answer) (string, error) { return s.unblock(ctx, a, person) }, nil
	case intake.SubjectErase:
		return subject, func(ctx context.Context, a *Answer) (string, error) { return s.erase(ctx, a, person) }, nil
	case intake.SubjectWithdraw:
		scope := strings.ToLower(strings.TrimSpace(ask.Scope))
		if scope != intake.ScopeMarketing && scope != intake.ScopeProcessing {
			return "", nil, fieldError("scope", "field.invalid", "must be marketing or processing")
		}
		return subject, func(ctx context.Context, a *Answer) (string, error) { return s.withdraw(ctx, a, person, scope) }, nil
	}
	return "", nil, fmt.Errorf("unknown subject request kind %q", ask.Kind)
}

// open records a new request, or takes up an open one of the same kind and
// subject named by ask.Reference (one that failed half-way).
func (s *Service) open(ctx context.Context, ask Ask, subject string) (*intake.SubjectRequest, error) {
	scope := ""
	if ask.Kind == intake.SubjectWithdraw {
		scope = strings.ToLower(strings.TrimSpace(ask.Scope))
	}
	if ask.Reference != "" {
		req, err := s.Records.SubjectRequest(ctx, ask.Reference)
		switch {
		case intake.ErrorCode(err) == intake.ENotFound:
			return nil, &intake.Error{Code: intake.EInvalid, Message: "reference: no such subject request",
				Fields: intake.FieldErrors{"reference": {Key: "field.invalid"}}}
		case err != nil:
			return nil, err
		case req.Kind != ask.Kind || req.Scope != scope || req.Subject != subject:
			return nil, &intake.Error{Code: intake.EInvalid, Message: "reference: that request was of another kind or about someone else",
				Fields: intake.FieldErrors{"reference": {Key: "field.invalid"}}}
		case !req.ClosedAt.IsZero():
			return nil, &intake.Error{Code: intake.EConflict, Message: "reference: that request is closed already"}
		}
		return req, nil
	}
	received := s.Now().UTC()
	req := &intake.SubjectRequest{Kind: ask.Kind, Scope: scope, ReceivedAt: received, DueAt: DueDate(received, s.Due),
		Subject: subject, By: ask.By}
	var err error
	for range 3 { // 24 random bits a day: a clash is rare, three in a row never
		req.Reference = newReference(received)
		if err = s.Records.OpenSubjectRequest(ctx, *req); intake.ErrorCode(err) != intake.EConflict {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return req, nil
}

// personOf validates the email of a request and returns the person hash.
func (s *Service) personOf(email string) (string, error) {
	key, err := checkEmail("email", strings.TrimSpace(email))
	if err != nil {
		return "", err
	}
	person, _ := s.People.PersonOf(key)
	return person, nil
}

// export gathers what is held about people; ENotFound when nothing.
func (s *Service) export(ctx context.Context, a *Answer, people []string) (string, error) {
	leads := 0
	for _, p := range people {
		sub, err := s.Records.Subject(ctx, p)
		if intake.ErrorCode(err) == intake.ENotFound {
			continue
		} else if err != nil {
			return "", err
		}
		a.People = append(a.People, sub)
		leads += len(sub.Leads)
	}
	if len(a.People) == 0 {
		return "", intake.NotHeld()
	}
	return fmt.Sprintf("exported: people=%d leads=%d", len(a.People), leads), nil
}

// rectify corrects every request of the person and their profile, and
// passes the corrections on to the CRMs holding copies (where the driver
// can). A new email moves the person to its hash; EConflict when that
// address is another person's.
func (s *Service) rectify(ctx context.Context, a *Answer, person string, changes intake.Changes, names []string) (string, error) {
	rect, err := s.Records.Rectify(ctx, person, changes)
	if err != nil {
		return "", err
	}
	queued := 0
	for _, id := range rect.CRM {
		if err := s.Queue.EnqueueCRMUpdate(ctx, id); err != nil {
			s.Log.Error("rectify: the CRM correction could not be queued; send the request again with its reference",
				"lead", id, "err", err)
			continue
		}
		queued++
	}
	a.Result = map[string]any{"changed": names, "leads": len(rect.Leads), "moved": rect.Moved, "crm_updates": queued}
	outcome := fmt.Sprintf("rectified: fields=%s leads=%d crm_updates=%d", strings.Join(names, ","), len(rect.Leads), queued)
	if missed := len(rect.CRM) - queued; missed > 0 {
		// Corrected here, which cannot be undone; the answer and the record
		// say what did not reach the CRM, to be corrected there by hand (the
		// error log names the leads).
		a.Result["crm_updates_not_queued"] = missed
		outcome += fmt.Sprintf(" crm_updates_not_queued=%d", missed)
	}
	return outcome, nil
}

// block stops processing (no routing, no mail, no campaign); storage stays.
func (s *Service) block(ctx context.Context, a *Answer, person string) (string, error) {
	moved, err := s.People.Block(ctx, person)
	if err != nil {
		return "", err
	}
	a.Result = map[string]any{"leads_blocked": len(moved)}
	return fmt.Sprintf("blocked: leads=%d", len(moved)), nil
}

// unblock lifts the block: each lead goes back to where it was, and those
// still to be routed are queued again.
func (s *Service) unblock(ctx context.Context, a *Answer, person string) (string, error) {
	restored, received, err := s.People.Unblock(ctx, person)
	if err != nil {
		return "", err
	}
	queued := 0
	for _, id := range received {
		if err := s.Queue.EnqueueLead(ctx, id); err != nil {
			// The lead is received again: the sweeper queues it within minutes.
			s.Log.Error("unblock: requeue failed; the sweeper will queue the lead", "lead", id, "err", err)
			continue
		}
		queued++
	}
	a.Result = map[string]any{"leads_restored": restored, "requeued": queued}
	return fmt.Sprintf("unblocked: leads=%d requeued=%d", restored, queued), nil
}

// erase destroys everything held about the person at once, asks the CRMs
// holding copies to delete them, and leaves only the person's keyed hash,
// on the suppression list.
func (s *Service) erase(ctx context.Context, a *Answer, person string) (string, error) {
	// The CRM deletions are queued first: once the leads are gone, nothing
	// would say which CRM holds what.
	e, err := s.Records.Erase(ctx, person, func(ctx context.Context, copies []intake.CRMCopy) error {
		for _, c := range copies {
			if err := s.Queue.EnqueueCRMErase(ctx, c.Lead, c.System, c.Ref); err != nil {
				return intake.Unavailable("queue CRM erasure", err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	a.Result = map[string]any{"leads_erased": len(e.Leads), "crm_erasures": len(e.CRM)}
	return fmt.Sprintf("erased: leads=%d crm_erasures=%d", len(e.Leads), len(e.CRM)), nil
}

// withdraw ends the person's consent to product news (scope marketing);
// scope processing also blocks them.
func (s *Service) withdraw(ctx context.Context, a *Answer, person, scope string) (string, error) {
	held, err := s.People.Held(ctx, person)
	if err != nil {
		return "", err
	} else if !held {
		return "", intake.NotHeld()
	}
	a.Result = map[string]any{}
	outcome := "withdrawn: " + scope
	if scope == intake.ScopeProcessing {
		moved, err := s.People.Block(ctx, person)
		if err != nil {
			return "", err
		}
		a.Result["leads_blocked"] = len(moved)
		outcome += fmt.Sprintf(" leads_blocked=%d", len(moved))
	}
	had, err := s.People.Withdraw(ctx, person, intake.Proof{At: s.Now().UTC(), Source: withdrawalSource})
	if err != nil {
		return "", err
	}
	a.Result["marketing_withdrawn"] = had
	return outcome + " marketing_withdrawn=" + strconv.FormatBool(had), nil
}
