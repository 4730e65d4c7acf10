package intake

import "net/http"

// auditEntry is what an admin request leaves in the audit log beyond who
// made it and which route: the record it acted on.
type auditEntry struct {
	Target string
}

type auditKey struct{}

// auditTarget names the record an admin request acted on, for its audit
// event: a lead or campaign id, a subject request reference, a person's
// keyed hash — never a personal value.
func auditTarget(r *http.Request, target string) {
	if e, ok := r.Context().Value(auditKey{}).(*auditEntry); ok {
		e.Target = target
	}
}
