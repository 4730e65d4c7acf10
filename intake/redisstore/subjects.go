package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore/walk"
)

// Subjects are the data-subject requests and the work they do on a
// person's records across every part of the store.
type Subjects struct {
	db
	leads     *Leads
	people    *People
	campaigns *Campaigns
}

// Redis keys of data-subject requests. A request is recorded by its
// reference and names its subject only by SubjectKey — a keyed hash derived
// from, but not equal to, the person's lookup hash — so the record that an
// erasure was done does not itself link back to anything of the person.
const (
	subjectScanCount    = 1000 // SCAN COUNT (and MGET batch) when looking for keys that name a person or lead
	subjectMaxAttempts  = 5    // a person's records changing under a request this often is EUnavailable
	subjectMaxListLimit = 500  // the most subject requests one listing page holds
)

// SubjectKey is how subject-request records name a person (or, for a
// request by phone, a phone's lookup hash): a keyed hash of the lookup
// hash. With the index key it can be computed from an address to find the
// requests about someone; without it, it matches nothing else in Redis.
func (s *Subjects) SubjectKey(kind, lookup string) string {
	return s.keys.Index("subject", kind, lookup)
}

// Subject gathers everything held about person, decrypted, or ENotFound
// when nothing is. A record that cannot be decrypted is an error: an access
// request must not be answered with part of the data.
func (s *Subjects) Subject(ctx context.Context, person string) (*intake.Subject, error) {
	var profile *redis.MapStringStringCmd
	var leads, consents *redis.StringSliceCmd
	var suppressed *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		profile = p.HGetAll(ctx, personKey(person))
		leads = p.ZRange(ctx, personKey(person)+keyLeads, 0, -1)
		consents = p.LRange(ctx, personKey(person)+keyConsents, 0, -1)
		suppressed = p.HGet(ctx, keySuppressed, person)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, intake.Unavailable("load person", err)
	}
	h := profile.Val()
	if len(h) == 0 && len(leads.Val()) == 0 {
		return nil, intake.NotHeld()
	}
	sub := &intake.Subject{Person: person, Profile: intake.SubjectProfile{Lang: h["lang"], EntityType: h["entity_type"],
		Marketing: h["marketing"], MarketingAt: msTime(h["marketing_at"]), ConfirmedAt: msTime(h["confirmed_at"]),
		Blocked: h["blocked"] == "1", Suppressed: suppressed.Val(), UpdatedAt: msTime(h["updated"])}}
	if sub.Profile.Marketing == "" {
		sub.Profile.Marketing = "none"
	}
	if h["products"] != "" {
		sub.Profile.Products = strings.Split(h["products"], ",")
	}
	if h["contact"] != "" {
		c, err := s.openContact(h["contact"], person)
		if err != nil {
			return nil, err
		}
		sub.Profile.Email, sub.Profile.Name = c.Email, c.Name
	}
	for _, id := range leads.Val() {
		l, err := s.leads.Get(ctx, id)
		if intake.ErrorCode(err) == intake.ENotFound {
			continue // purged between the two reads
		} else if err != nil {
			return nil, err
		}
		sub.Leads = append(sub.Leads, l)
		sub.Consents = append(sub.Consents, intake.ConsentRecord{Kind: "processing", Lead: l.ID, At: l.Consent.GivenAt,
			PolicyVersion: l.Consent.PolicyVersion, PolicyURL: l.Consent.PolicyURL, IP: l.Consent.IP,
			UserAgent: l.Consent.UserAgent, PageURL: l.Consent.PageURL})
	}
	for _, e := range consents.Val() {
		lead, ev, err := s.openConsent(e, person)
		if err != nil {
			return nil, err
		}
		sub.Consents = append(sub.Consents, intake.ConsentRecord{Kind: ev.Kind, Lead: lead, At: ev.At,
			PolicyVersion: ev.PolicyVersion, IP: ev.IP, UserAgent: ev.UserAgent, PageURL: ev.PageURL, Source: ev.Source})
	}
	sort.SliceStable(sub.Consents, func(i, j int) bool { return sub.Consents[i].At.Before(sub.Consents[j].At) })
	if sub.Mail, err = s.campaigns.MailSent(ctx, person); err != nil {
		return nil, err
	}
	return sub, nil
}

// openConsent splits an entry of a consent history ("<lead id|-> <sealed
// event>") and decrypts its event, sealed bound to person.
func (s *Subjects) openConsent(entry, person string) (lead string, ev consentEvent, err error) {
	lead, sealed, ok := strings.Cut(entry, " ")
	if !ok {
		return "", ev, errors.New("consent history: malformed entry")
	}
	plain, err := s.keys.Open(sealed, person)
	if err != nil {
		return "", ev, fmt.Errorf("consent history: %w", err)
	}
	if err := json.Unmarshal(plain, &ev); err != nil {
		return "", ev, fmt.Errorf("consent history: %w", err)
	}
	if lead == "-" {
		lead = ""
	}
	return lead, ev, nil
}

// openRequestScript records a new request unless its reference is taken.
var openRequestScript = script("open_request.lua")

// OpenSubjectRequest records r as received and not yet closed. It reports
// EConflict when the reference is taken, so the caller draws another.
func (s *Subjects) OpenSubjectRequest(ctx context.Context, r intake.SubjectRequest) error {
	args := []any{r.ReceivedAt.UnixMilli(), "reference", r.Reference, "kind", string(r.Kind), "received", r.ReceivedAt.UnixMilli(),
		"due", r.DueAt.UnixMilli(), "subject", r.Subject, "by", r.By}
	if r.Scope != "" {
		args = append(args, "scope", r.Scope)
	}
	n, err := openRequestScript.Run(ctx, s.rdb, []string{keySubjectRequests, subjectRequestKey(r.Reference)}, args...).Int()
	if err != nil {
		return intake.Unavailable("record subject request", err)
	}
	if n == 0 {
		return &intake.Error{Code: intake.EConflict, Message: "subject request reference taken"}
	}
	return nil
}

// SubjectRequest loads the record of request ref, or ENotFound.
func (s *Subjects) SubjectRequest(ctx context.Context, ref string) (*intake.SubjectRequest, error) {
	h, err := s.rdb.HGetAll(ctx, subjectRequestKey(ref)).Result()
	if err != nil {
		return nil, intake.Unavailable("load subject request", err)
	}
	if len(h) == 0 {
		return nil, &intake.Error{Code: intake.ENotFound, Message: "no such subject request"}
	}
	r := subjectRequestOf(ref, h)
	return &r, nil
}

func subjectRequestOf(ref string, h map[string]string) intake.SubjectRequest {
	return intake.SubjectRequest{Reference: ref, Kind: intake.SubjectKind(h["kind"]), Scope: h["scope"], ReceivedAt: msTime(h["received"]),
		DueAt: msTime(h["due"]), ClosedAt: msTime(h["closed"]), Subject: h["subject"], By: h["by"], Outcome: h["outcome"]}
}

// CloseSubjectRequest records how request ref ended, at at.
func (s *Subjects) CloseSubjectRequest(ctx context.Context, ref, outcome string, at time.Time) error {
	err := s.rdb.HSet(ctx, subjectRequestKey(ref), "closed", at.UnixMilli(), "outcome", outcome).Err()
	if err != nil {
		return intake.Unavailable("close subject request", err)
	}
	return nil
}

// NoteSubjectRequest records an outcome of request ref that leaves it open
// (it failed half-way and needs another try).
func (s *Subjects) NoteSubjectRequest(ctx context.Context, ref, outcome string) error {
	if err := s.rdb.HSet(ctx, subjectRequestKey(ref), "outcome", outcome).Err(); err != nil {
		return intake.Unavailable("note subject request", err)
	}
	return nil
}

// SubjectRequests lists up to limit subject requests of which kind,
// newest first, continuing after cursor (an earlier page's next; "" for
// the first). Each stretch of the index is read in one round trip; a
// record purged meanwhile is left out.
func (s *Subjects) SubjectRequests(ctx context.Context, which intake.RequestsOf, cursor string, limit int) (reqs []intake.SubjectRequest, next string, err error) {
	limit = min(max(limit, 1), subjectMaxListLimit)
	read := map[string]intake.SubjectRequest{}
	found, err := walk.NewestFirst(ctx, s.rdb, walk.Walk{Index: keySubjectRequests, Cursor: cursor, Limit: limit},
		func(ctx context.Context, refs []string) ([]bool, error) {
			cmds := make([]*redis.MapStringStringCmd, len(refs))
			_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, ref := range refs {
					cmds[i] = p.HGetAll(ctx, subjectRequestKey(ref))
				}
				return nil
			})
			if err != nil {
				return nil, intake.Unavailable("list subject requests", err)
			}
			oks := make([]bool, len(refs))
			for i, ref := range refs {
				if h := cmds[i].Val(); len(h) > 0 {
					read[ref] = subjectRequestOf(ref, h)
					oks[i] = which.Holds(read[ref])
				}
			}
			return oks, nil
		})
	if err != nil {
		return nil, "", err
	}
	for _, ref := range found.Members {
		reqs = append(reqs, read[ref])
	}
	return reqs, found.Next, nil
}
