// Package views are records as leadgate's answers show them, shared by the
// admin API (intake/httpapi) and the console (intake/httpapi/console), so
// that an export downloaded from the console is the API's export, field
// for field.
package views

import (
	"sort"
	"time"

	"github.com/paymtech/leadgate/intake"
)

// Lead is a lead as the sales team reads it.
type Lead struct {
	ID         string             `json:"id"`
	State      intake.State       `json:"state"`
	EntityType string             `json:"entity_type"`
	Name       string             `json:"name,omitempty"`
	Phone      string             `json:"phone"`
	Email      string             `json:"email"`
	TaxID      string             `json:"tax_id,omitempty"`
	Products   []string           `json:"products,omitempty"`
	Message    string             `json:"message,omitempty"`
	Lang       string             `json:"lang"`
	Consent    intake.Consent     `json:"consent"`
	Metadata   intake.Metadata    `json:"metadata"`
	CreatedAt  time.Time          `json:"created_at"`
	UpdatedAt  time.Time          `json:"updated_at"`
	Risk       intake.Risk        `json:"risk"`
	Released   bool               `json:"released,omitempty"`
	Assignment *intake.Assignment `json:"assignment,omitempty"`
	Route      intake.Route       `json:"route"`
	Transfers  []intake.Transfer  `json:"transfers"`
}

// LeadOf is l as the API and the console show it.
func LeadOf(l *intake.Lead) Lead {
	transfers := l.Transfers
	if transfers == nil {
		transfers = []intake.Transfer{}
	}
	return Lead{ID: l.ID, State: l.State, EntityType: l.EntityType, Name: l.Name,
		Phone: l.Phone, Email: l.Email, TaxID: l.TaxID, Products: l.Products, Message: l.Message, Lang: l.Lang,
		Consent: l.Consent, Metadata: l.Meta, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, Risk: l.Risk,
		Released: l.Released, Assignment: l.Assignment, Route: l.Route, Transfers: transfers}
}

// Subject is one person's data as an export shows it.
type Subject struct {
	Profile   intake.SubjectProfile  `json:"profile"`
	Leads     []Lead                 `json:"leads"`
	Consents  []intake.ConsentRecord `json:"consents"`
	Transfers []Transfer             `json:"transfers"`
	Emails    []Email                `json:"emails"`
}

// Transfer is one entry of a lead's disclosure log, named with its lead.
type Transfer struct {
	Lead string `json:"lead"`
	intake.Transfer
}

// Email is one email sent to the person: a campaign or notice (Ref
// names it), or mail about one of their requests (Lead and Purpose).
type Email struct {
	Kind    string    `json:"kind"` // campaign, breach_notice, request
	Ref     string    `json:"ref,omitempty"`
	Lead    string    `json:"lead,omitempty"`
	Purpose string    `json:"purpose,omitempty"`
	At      time.Time `json:"at"`
}

// Export shows what an export found: per person, every lead, the
// consent history, every transfer and every email, each list oldest first.
func Export(people []*intake.Subject) []Subject {
	views := make([]Subject, 0, len(people))
	for _, sub := range people {
		v := Subject{Profile: sub.Profile, Leads: []Lead{}, Consents: sub.Consents, Transfers: []Transfer{},
			Emails: []Email{}}
		if v.Consents == nil {
			v.Consents = []intake.ConsentRecord{}
		}
		for _, l := range sub.Leads {
			v.Leads = append(v.Leads, LeadOf(l))
			for _, t := range l.Transfers {
				v.Transfers = append(v.Transfers, Transfer{Lead: l.ID, Transfer: t})
				if t.Recipient == "mail" {
					v.Emails = append(v.Emails, Email{Kind: "request", Lead: l.ID, Purpose: t.Purpose, At: t.At})
				}
			}
		}
		for _, m := range sub.Mail {
			v.Emails = append(v.Emails, Email{Kind: string(m.Kind), Ref: m.Ref, At: m.At})
		}
		sort.SliceStable(v.Transfers, func(i, j int) bool { return v.Transfers[i].At.Before(v.Transfers[j].At) })
		sort.SliceStable(v.Emails, func(i, j int) bool { return v.Emails[i].At.Before(v.Emails[j].At) })
		views = append(views, v)
	}
	return views
}
