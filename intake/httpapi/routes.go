package httpapi

import (
	"context"
	"net/http"

	"github.com/paymtech/leadgate/intake"
)

// public marks a route anyone may call.
const public intake.Role = ""

// route is one entry of the route table.
type route struct {
	pattern string
	role    intake.Role // public, or the role an admin token needs (admin may do everything)
	handler http.HandlerFunc
}

// routes is every route leadgate serves, with the role it needs; a route
// answering with HTML pages says their kind with s.page (headers.go).
func (s *Server) routes() []route {
	unsubscribe, sendgridEvents := s.unsubscribe, s.sendgridWebhook()
	return []route{
		// The form and what a visitor's browser does with it.
		{"GET /{$}", public, s.page(embeddable, s.formPage)},
		{"GET /thanks", public, s.page(embeddable, s.thanksPage)},
		{"POST /v1/leads", public, s.page(embeddable, s.submit)}, // a browser's post that fails gets the form again
		{"OPTIONS /v1/leads", public, s.preflight},
		{"GET /static/{file}", public, s.static}, // the pages' stylesheet and script
		// Links in the person's mail, and the mail provider's reports.
		{"GET /v1/optin/confirm", public, s.page(standalone, s.confirmOptin)},
		{"POST /v1/optin/confirm", public, s.page(standalone, s.confirmOptin)},
		{"GET /v1/unsubscribe", public, s.page(standalone, unsubscribe)},
		{"POST /v1/unsubscribe", public, s.page(standalone, unsubscribe)},
		{"POST /v1/webhooks/sendgrid", public, sendgridEvents},
		// Sales.
		{"GET /v1/admin/leads", intake.RoleSales, s.listLeads},
		{"GET /v1/admin/leads/{id}", intake.RoleSales, s.getLead},
		{"POST /v1/admin/leads/{id}/redrive", intake.RoleSales, s.redrive},
		// Marketing.
		{"POST /v1/admin/campaigns", intake.RoleMarketing, s.createCampaign},
		{"GET /v1/admin/campaigns", intake.RoleMarketing, s.listCampaigns(intake.KindCampaign)},
		{"GET /v1/admin/campaigns/{id}", intake.RoleMarketing, s.getCampaign(intake.KindCampaign)},
		{"POST /v1/admin/campaigns/{id}/cancel", intake.RoleMarketing, s.cancelCampaign},
		{"GET /v1/admin/campaigns/{id}/failures", intake.RolePrivacy, s.campaignFailures(intake.KindCampaign)}, // who, not only how many
		// Privacy: data-subject requests.
		{"POST /v1/admin/subjects/export", intake.RolePrivacy, s.subjectExport},
		{"POST /v1/admin/subjects/rectify", intake.RolePrivacy, s.subjectRectify},
		{"POST /v1/admin/subjects/block", intake.RolePrivacy, s.subjectBlock},
		{"POST /v1/admin/subjects/unblock", intake.RolePrivacy, s.subjectUnblock},
		{"POST /v1/admin/subjects/erase", intake.RolePrivacy, s.subjectErase},
		{"POST /v1/admin/subjects/withdraw", intake.RolePrivacy, s.subjectWithdraw},
		{"GET /v1/admin/subjects/requests", intake.RolePrivacy, s.subjectRequests},
		// Admin only.
		{"POST /v1/admin/breach-notices", intake.RoleAdmin, s.createBreachNotice},
		{"GET /v1/admin/breach-notices", intake.RoleAdmin, s.listCampaigns(intake.KindBreachNotice)},
		{"GET /v1/admin/breach-notices/{id}", intake.RoleAdmin, s.getCampaign(intake.KindBreachNotice)},
		{"GET /v1/admin/breach-notices/{id}/failures", intake.RolePrivacy, s.campaignFailures(intake.KindBreachNotice)}, // the privacy officer follows up who was not notified
		{"GET /v1/admin/audit", intake.RoleAdmin, s.auditLog},
	}
}

// Register adds every route to mux, admin routes behind their role, each
// with the security headers of headers.go (HTML pages are marked in the
// table with s.page and their kind).
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range s.routes() {
		var h http.Handler = rt.handler
		if rt.role != public {
			h = s.admin(rt.role, rt.handler)
		}
		mux.Handle(rt.pattern, s.secure(h))
	}
}

type holderKey struct{}

// Holder returns the admin token holder of an authenticated request.
func Holder(ctx context.Context) (intake.Token, bool) {
	t, ok := ctx.Value(holderKey{}).(intake.Token)
	return t, ok
}

// admin guards an admin route: no or unknown token is 401, a token of
// another role 403. The holder is in the request context, and every call —
// allowed or refused — leaves one event in the audit log: who (role and
// token name), which route, which record (auditTarget, else the {id} path
// value) and the status answered. Refused calls are what an auditor looks
// for, so they are recorded too.
func (s *Server) admin(role intake.Role, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := authenticate(r, s.opts.AdminTokens)
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="leadgate"`)
			s.writeError(w, "admin", &intake.Error{Code: intake.EUnauthorized, Message: "a valid admin token is required"}, nil, "")
			s.audit(r, intake.Token{}, false, "", http.StatusUnauthorized)
		case !t.Role.Permits(role):
			s.writeError(w, "admin", &intake.Error{Code: intake.EForbidden, Message: "this token's role may not use this route"}, nil, "")
			s.audit(r, t, true, "", http.StatusForbidden)
		default:
			entry := &auditEntry{}
			ctx := context.WithValue(context.WithValue(r.Context(), holderKey{}, t), auditKey{}, entry)
			rec := &auditRecorder{ResponseWriter: w}
			next(rec, r.WithContext(ctx))
			if rec.status == 0 { // wrote nothing: net/http answers 200
				rec.status = http.StatusOK
			}
			s.audit(r, t, true, entry.Target, rec.status)
		}
	})
}
