// Package crm is what every sales-CRM driver (bitrix24, amocrm, webhook, file)
// receives and gives back: a Lead in, a Receipt out.
//
// # The lead document
//
// A Lead's JSON form is a public format: it is the "data" object of the
// webhook driver's lead.created event and the content of the file driver's
// files. Times are RFC 3339; fields marked "omitted when empty" are left out
// rather than sent as "".
//
//	id                      string   leadgate's id of the request; stable, also the webhook-id
//	entity_type             string   "legal_entity" or "sole_proprietor"
//	name                    string   contact or company name as typed (omitted when empty)
//	phone                   string   E.164, e.g. "+77010000000"
//	email                   string   as typed, trimmed
//	tax_id                  string   12-digit BIN or IIN (omitted when empty)
//	products                []string product codes from PRODUCT_CATALOG (omitted when empty)
//	message                 string   free text (omitted when empty)
//	lang                    string   "kk", "ru" or "en": the language to answer in
//	received_at             time     when leadgate accepted the request
//	consent.processing      bool     consent to processing of personal data (always true: required)
//	consent.marketing       bool     opt-in to product information requested with this request; a double opt-in may still be pending
//	consent.policy_version  string   the privacy-policy version agreed to
//	consent.policy_url      string   where that policy is published
//	consent.given_at        time     when consent was given
//	metadata.ip             string   the client's IP address
//	metadata.user_agent     string   the browser's User-Agent (omitted when empty)
//	metadata.browser        string   browser name and version (omitted when empty)
//	metadata.os             string   operating system (omitted when empty)
//	metadata.timezone       string   IANA timezone the browser reported (omitted when empty)
//	metadata.page_url       string   page the form was sent from (omitted when empty)
//	metadata.utm_source     string   campaign tag (omitted when empty)
//	metadata.utm_medium     string   campaign tag (omitted when empty)
//	metadata.utm_campaign   string   campaign tag (omitted when empty)
//	metadata.cookies        object   allow-listed cookies (CAPTURE_COOKIES), name to value (omitted when empty)
//	assignment.rule         string   the routing rule (ROUTING_RULES) that matched, or "fallback" when none did
//	assignment.team         string   the sales team the rule names
//	assignment.owner        string   the salesperson responsible, by their name in the routing rules
//	assignment.crm_user_id  string   the owner's user id in the CRM (omitted when empty: the CRM's default owner gets the lead)
//	risk.score              int      anti-fraud score from 0 (ordinary) to 100 (certainly abuse); a lead reaching
//	                                 RISK_REVIEW_THRESHOLD is only sent after a person released it
//	risk.signals            []string what raised the score, e.g. "disposable_email", "fast_submit" (omitted when empty)
//
// The assignment object is left out for a lead routed before routing rules
// existed; risk is always present.
//
// For example:
//
//	{
//	  "id": "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e",
//	  "entity_type": "legal_entity",
//	  "name": "Test Testov",
//	  "phone": "+77010000000",
//	  "email": "test@example.com",
//	  "tax_id": "000000000000",
//	  "products": ["acquiring", "payment_links"],
//	  "message": "We would like to accept cards online.",
//	  "lang": "ru",
//	  "received_at": "2025-04-15T09:30:00Z",
//	  "consent": {
//	    "processing": true,
//	    "marketing": false,
//	    "policy_version": "1",
//	    "policy_url": "https://example.com/privacy",
//	    "given_at": "2025-04-15T09:30:00Z"
//	  },
//	  "metadata": {
//	    "ip": "203.0.113.7",
//	    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/137.0",
//	    "browser": "Firefox 137.0",
//	    "os": "Linux",
//	    "timezone": "Asia/Almaty",
//	    "page_url": "https://example.com/connect",
//	    "utm_source": "newsletter",
//	    "cookies": {"_ga": "GA1.1.000000000.0000000000"}
//	  },
//	  "assignment": {
//	    "rule": "fallback",
//	    "team": "smb",
//	    "owner": "aigerim",
//	    "crm_user_id": "12"
//	  },
//	  "risk": {
//	    "score": 20,
//	    "signals": ["repeat_email"]
//	  }
//	}
package crm

import (
	"errors"
	"time"

	"github.com/paymtech/leadgate/intake"
)

// ErrUnsupported is returned by a driver asked for something its CRM cannot
// do (amoCRM's API, for one, cannot delete a lead); the caller records that
// the request could not be passed on.
var ErrUnsupported = errors.New("not supported by this CRM")

// Lead is a connection request as the sales CRM receives it: the fields as
// submitted (phone in E.164), the consent given with it and the metadata
// recorded (privacy policy 2.3). The package comment documents its JSON form.
type Lead struct {
	ID         string    `json:"id"`
	EntityType string    `json:"entity_type"` // legal_entity | sole_proprietor
	Name       string    `json:"name,omitempty"`
	Phone      string    `json:"phone"` // E.164
	Email      string    `json:"email"`
	TaxID      string    `json:"tax_id,omitempty"`
	Products   []string  `json:"products,omitempty"`
	Message    string    `json:"message,omitempty"`
	Lang       string    `json:"lang"`
	ReceivedAt time.Time `json:"received_at"`
	Consent    Consent   `json:"consent"`
	Metadata   Metadata  `json:"metadata"`
	// Assignment is who in sales gets the lead; nil only for a lead routed
	// before routing rules existed.
	Assignment *Assignment `json:"assignment,omitempty"`
	Risk       Risk        `json:"risk"`
}

// Assignment is the routing rules' decision: which rule matched, the team,
// and the salesperson responsible. It is the domain's own.
type Assignment = intake.Assignment

// Risk is the anti-fraud score of a request (privacy policy 2.5): 0 is
// ordinary, 100 certainly abuse; Signals name what raised it. It is the
// domain's own.
type Risk = intake.Risk

// Consent is what the person agreed to with this request, under which
// policy and when: a CRM keeps it so sales can show the basis for calling.
type Consent struct {
	Processing    bool      `json:"processing"`
	Marketing     bool      `json:"marketing"` // opt-in requested with this request (double opt-in may still be pending)
	PolicyVersion string    `json:"policy_version"`
	PolicyURL     string    `json:"policy_url"`
	GivenAt       time.Time `json:"given_at"`
}

// Metadata is what the server recorded with the request, as privacy policy
// 2.3 lists it. The IP is always present: it is part of the proof of
// consent. It is the domain's own.
type Metadata = intake.Metadata

// Finder is a driver whose Push first looks the lead up by its id in the
// CRM (Bitrix24's ORIGIN_ID, amoCRM's lead-id field) and returns the
// earlier delivery instead of adding a second one. Pushing a lead again
// through any other driver delivers it again: the webhook's receivers
// deduplicate by webhook-id, the file driver overwrites; the router counts
// those redeliveries.
type Finder interface {
	// FindsEarlier reports whether Push looks an earlier delivery up first.
	FindsEarlier() bool
}

// Receipt says where a lead went: the system name, which is recorded in the
// lead's disclosure log, and the CRM's own reference to it (its id, a file
// name, or the webhook id) so an operator can find it there.
type Receipt struct {
	System string `json:"system"`
	Ref    string `json:"ref,omitempty"`
	URL    string `json:"url,omitempty"` // a link to the lead in the CRM, for notifications
}

// EntityLabel is how the sales team, in Russian, names a Lead's entity type:
// "Юрлицо" for legal_entity, "ИП" for sole_proprietor, "" for anything else.
func EntityLabel(entityType string) string {
	switch entityType {
	case "legal_entity":
		return "Юрлицо"
	case "sole_proprietor":
		return "ИП"
	}
	return ""
}
