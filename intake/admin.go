package intake

import (
	"context"
	"net/http"
	"time"
)

type holderKey struct{}

// Holder returns the admin token holder of an authenticated request.
func Holder(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(holderKey{}).(Token)
	return t, ok
}

// admin guards an admin route: no or unknown token is 401, a token of
// another role 403. The holder is in the request context for the audit log.
func (s *Server) admin(role string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := authenticate(r, s.opts.AdminTokens)
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="leadgate"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": string(EUnauthorized)})
		case !permits(t.Role, role):
			writeJSON(w, http.StatusForbidden, map[string]string{"error": string(EForbidden)})
		default:
			next(w, r.WithContext(context.WithValue(r.Context(), holderKey{}, t)))
		}
	})
}

// leadView is a lead as the sales team reads it.
type leadView struct {
	ID         string     `json:"id"`
	State      State      `json:"state"`
	EntityType string     `json:"entity_type"`
	Name       string     `json:"name,omitempty"`
	Phone      string     `json:"phone"`
	Email      string     `json:"email"`
	TaxID      string     `json:"tax_id,omitempty"`
	Products   []string   `json:"products,omitempty"`
	Message    string     `json:"message,omitempty"`
	Lang       string     `json:"lang"`
	Consent    Consent    `json:"consent"`
	Metadata   Metadata   `json:"metadata"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	Route      Route      `json:"route"`
	Transfers  []Transfer `json:"transfers"`
}

func (s *Server) getLead(w http.ResponseWriter, r *http.Request) {
	l, err := s.store.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		code := ErrorCode(err)
		if code == "" {
			s.log.Error("load lead", "lead", r.PathValue("id"), "err", err)
		}
		writeJSON(w, statusOf(code), map[string]string{"error": string(code)})
		return
	}
	transfers := l.Transfers
	if transfers == nil {
		transfers = []Transfer{}
	}
	writeJSON(w, http.StatusOK, leadView{ID: l.ID, State: l.State, EntityType: l.EntityType, Name: l.Name,
		Phone: l.Phone, Email: l.Email, TaxID: l.TaxID, Products: l.Products, Message: l.Message, Lang: l.Lang,
		Consent: l.Consent, Metadata: l.Meta, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, Route: l.Route,
		Transfers: transfers})
}
