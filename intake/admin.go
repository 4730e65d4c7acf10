package intake

import "time"

// Role is what an admin token lets its holder do.
type Role string

// The roles of admin tokens (LEADGATE_ADMIN_TOKENS), and the role of
// leadgate's own processes in the audit log.
const (
	RoleSales     Role = "sales"     // leads: list, read, redrive, release
	RoleMarketing Role = "marketing" // campaigns
	RolePrivacy   Role = "privacy"   // data-subject requests
	RoleAdmin     Role = "admin"     // everything, and the audit log and breach notices
	RoleMetrics   Role = "metrics"   // reads /metrics only: every admin route refuses it
	RoleSystem    Role = "system"    // a leadgate process (purge, rekey); never a token's
)

// TokenRoles are the roles a token may carry.
var TokenRoles = []Role{RoleSales, RoleMarketing, RolePrivacy, RoleAdmin, RoleMetrics}

// Permits reports whether a holder of r may use what needs role want: the
// same role, or admin.
func (r Role) Permits(want Role) bool {
	return r == want || r == RoleAdmin
}

// Token is one admin credential.
type Token struct {
	Role   Role
	Name   string // who holds it, for the audit log
	Secret string
}

// Limit is an allowance of N events per Per.
type Limit struct {
	N   int
	Per time.Duration
}

// AuditEvent is one entry of the audit log. Nothing in it is personal data.
type AuditEvent struct {
	// ID is the event's stream id ("<ms>-<seq>"), set by Redis when the event
	// is appended; it is the cursor of the audit listing.
	ID string `json:"id"`
	// At is when the event was appended, by the Redis server's clock: one
	// clock for every process, so the log's order is the order of events.
	// It is ignored when appending.
	At time.Time `json:"at"`
	// Role and Name identify who acted: a token's role and holder name, or
	// role "system" and the process ("purge", "rekey"). A call with no valid
	// token has no role and the name "unauthenticated".
	Role Role   `json:"role"`
	Name string `json:"name"`
	// Action is the admin route pattern ("POST /v1/admin/subjects/erase"),
	// or the system process's action ("rekey").
	Action string `json:"action"`
	// Target is the record acted on: a lead or campaign id, a subject
	// request reference, a person's keyed hash. Never a personal value.
	Target string `json:"target"`
	// Status is the HTTP status answered; for actions outside HTTP 200 when
	// done and 500 when failed, so one filter finds every failure.
	Status int `json:"status"`
	// Detail is an optional note of counts ("rekeyed=12 unreadable=0").
	// Never a personal value.
	Detail string `json:"detail,omitempty"`
}

// MaxRefusedPerMinute bounds how many unauthenticated admin calls the audit
// log records each minute. Anyone on the internet can make them, and with
// Redis at noeviction an unbounded log of them could fill the memory the
// leads need; a token holder's calls (403s included) are never capped.
// Calls beyond the cap are counted and reported in the application log.
const MaxRefusedPerMinute = 60
