package httpapi

import (
	"context"
	"net/http"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/httpapi/console"
)

// public marks a route anyone may call.
const public intake.Role = ""

// signedIn marks a console route (auth session) every signed-in role may
// use: its home, signing out. Which roles may sign in is the console's
// rule (console.signsIn): not metrics.
const signedIn intake.Role = ""

// authKind is how a route knows who calls it.
type authKind int

const (
	authNone    authKind = iota // anyone: the form, the links in mail, the console's sign-in
	authBearer                  // an admin token in "Authorization: Bearer" (the admin API, /v1/admin)
	authSession                 // a console session cookie, and a csrf field on every post (/admin)
)

// route is one entry of the route table.
type route struct {
	pattern string
	role    intake.Role // public, or the role the token or session needs (admin may do everything)
	auth    authKind
	handler http.HandlerFunc
}

// routes is every route leadgate serves, with the role it needs; a route
// answering with HTML pages says their kind with s.page (headers.go).
func (s *Server) routes() []route {
	unsubscribe, sendgridEvents, c := s.unsubscribe, s.sendgridWebhook(), s.console
	return []route{
		// The form and what a visitor's browser does with it.
		{"GET /{$}", public, authNone, s.page(embeddable, s.formPage)},
		{"GET /thanks", public, authNone, s.page(embeddable, s.thanksPage)},
		{"POST /v1/leads", public, authNone, s.page(embeddable, s.submit)}, // a browser's post that fails gets the form again
		{"OPTIONS /v1/leads", public, authNone, s.preflight},
		{"GET /static/{file}", public, authNone, s.static}, // the pages' stylesheet and script
		// Links in the person's mail, and the mail provider's reports.
		{"GET /v1/optin/confirm", public, authNone, s.page(standalone, s.confirmOptin)},
		{"POST /v1/optin/confirm", public, authNone, s.page(standalone, s.confirmOptin)},
		{"GET /v1/unsubscribe", public, authNone, s.page(standalone, unsubscribe)},
		{"POST /v1/unsubscribe", public, authNone, s.page(standalone, unsubscribe)},
		{"POST /v1/webhooks/sendgrid", public, authNone, sendgridEvents},
		{"GET /openapi.json", public, authNone, s.openAPI}, // the JSON routes described for integrators
		// Sales.
		{"GET /v1/admin/leads", intake.RoleSales, authBearer, s.listLeads},
		{"GET /v1/admin/leads/{id}", intake.RoleSales, authBearer, s.getLead},
		{"POST /v1/admin/leads/{id}/redrive", intake.RoleSales, authBearer, s.redrive},
		// Marketing.
		{"POST /v1/admin/campaigns", intake.RoleMarketing, authBearer, s.createCampaign},
		{"GET /v1/admin/campaigns", intake.RoleMarketing, authBearer, s.listCampaigns(intake.KindCampaign)},
		{"GET /v1/admin/campaigns/{id}", intake.RoleMarketing, authBearer, s.getCampaign(intake.KindCampaign)},
		{"POST /v1/admin/campaigns/{id}/cancel", intake.RoleMarketing, authBearer, s.cancelCampaign},
		{"GET /v1/admin/campaigns/{id}/failures", intake.RolePrivacy, authBearer, s.campaignFailures(intake.KindCampaign)}, // who, not only how many
		// Privacy: data-subject requests.
		{"POST /v1/admin/subjects/export", intake.RolePrivacy, authBearer, s.subjectExport},
		{"POST /v1/admin/subjects/rectify", intake.RolePrivacy, authBearer, s.subjectRectify},
		{"POST /v1/admin/subjects/block", intake.RolePrivacy, authBearer, s.subjectBlock},
		{"POST /v1/admin/subjects/unblock", intake.RolePrivacy, authBearer, s.subjectUnblock},
		{"POST /v1/admin/subjects/erase", intake.RolePrivacy, authBearer, s.subjectErase},
		{"POST /v1/admin/subjects/withdraw", intake.RolePrivacy, authBearer, s.subjectWithdraw},
		{"GET /v1/admin/subjects/requests", intake.RolePrivacy, authBearer, s.subjectRequests},
		// Admin only.
		{"POST /v1/admin/breach-notices", intake.RoleAdmin, authBearer, s.createBreachNotice},
		{"GET /v1/admin/breach-notices", intake.RoleAdmin, authBearer, s.listCampaigns(intake.KindBreachNotice)},
		{"GET /v1/admin/breach-notices/{id}", intake.RoleAdmin, authBearer, s.getCampaign(intake.KindBreachNotice)},
		{"GET /v1/admin/breach-notices/{id}/failures", intake.RolePrivacy, authBearer, s.campaignFailures(intake.KindBreachNotice)}, // the privacy officer follows up who was not notified
		{"GET /v1/admin/audit", intake.RoleAdmin, authBearer, s.auditLog},

		// The console (intake/httpapi/console): pages for the same people,
		// signed in with their admin token.
		{"GET /admin/login", public, authNone, s.page(consolePage, c.LoginPage)},
		{"POST /admin/login", public, authNone, s.page(consolePage, c.Login)}, // cross-site posts refused, attempts limited per client
		{"POST /admin/logout", signedIn, authSession, s.page(consolePage, c.Logout)},
		{"GET /admin/{$}", signedIn, authSession, s.page(consolePage, c.Home)},
		{"GET /admin/leads", intake.RoleSales, authSession, s.page(consolePage, c.LeadList)},
		{"GET /admin/leads/{id}", intake.RoleSales, authSession, s.page(consolePage, c.Lead)},
		{"POST /admin/leads/{id}/redrive", intake.RoleSales, authSession, s.page(consolePage, c.Redrive)},
		// Privacy console: the subject-request desk and a person's page,
		// named by a handle bound to the session; addresses and phones are
		// only ever posted.
		{"GET /admin/subjects", intake.RolePrivacy, authSession, s.page(consolePage, c.Subjects)},
		{"POST /admin/subjects/find", intake.RolePrivacy, authSession, s.page(consolePage, c.Find)},
		{"GET /admin/subjects/p/{handle}", intake.RolePrivacy, authSession, s.page(consolePage, c.Person)},
		{"POST /admin/subjects/p/{handle}/export", intake.RolePrivacy, authSession, s.page(consolePage, c.Act(intake.SubjectExport))},
		{"POST /admin/subjects/p/{handle}/rectify", intake.RolePrivacy, authSession, s.page(consolePage, c.Act(intake.SubjectRectify))},
		{"POST /admin/subjects/p/{handle}/block", intake.RolePrivacy, authSession, s.page(consolePage, c.Act(intake.SubjectBlock))},
		{"POST /admin/subjects/p/{handle}/unblock", intake.RolePrivacy, authSession, s.page(consolePage, c.Act(intake.SubjectUnblock))},
		{"GET /admin/subjects/p/{handle}/erase", intake.RolePrivacy, authSession, s.page(consolePage, c.EraseConfirm)},
		{"POST /admin/subjects/p/{handle}/erase", intake.RolePrivacy, authSession, s.page(consolePage, c.Act(intake.SubjectErase))},
		{"POST /admin/subjects/p/{handle}/withdraw", intake.RolePrivacy, authSession, s.page(consolePage, c.Act(intake.SubjectWithdraw))},
		// End of the privacy console's routes.
		// --- campaigns: marketing's pages (console/campaigns.go) ---
		{"GET /admin/campaigns", intake.RoleMarketing, authSession, s.page(consolePage, c.CampaignList)},
		{"GET /admin/campaigns/new", intake.RoleMarketing, authSession, s.page(consolePage, c.NewCampaign)},
		{"POST /admin/campaigns", intake.RoleMarketing, authSession, s.page(consolePage, c.CreateCampaign)}, // preview, test send or send
		{"GET /admin/campaigns/{id}", intake.RoleMarketing, authSession, s.page(consolePage, c.Campaign)},
		{"POST /admin/campaigns/{id}/cancel", intake.RoleMarketing, authSession, s.page(consolePage, c.CancelCampaign)},
		// --- end campaigns ---
		// Admin's pages: breach notices, the audit log, the queues.
		{"GET /admin/breach-notices", intake.RoleAdmin, authSession, s.page(consolePage, c.BreachNotices)},
		{"GET /admin/breach-notices/new", intake.RoleAdmin, authSession, s.page(consolePage, c.NewBreachNotice)},
		{"POST /admin/breach-notices", intake.RoleAdmin, authSession, s.page(consolePage, c.CreateBreachNotice)}, // review, edit or send
		{"GET /admin/breach-notices/{id}", intake.RoleAdmin, authSession, s.page(consolePage, c.BreachNotice)},
		{"GET /admin/audit", intake.RoleAdmin, authSession, s.page(consolePage, c.AuditPage)},
		{"GET /admin/queues", intake.RoleAdmin, authSession, s.page(consolePage, c.Queues)},
		{"POST /admin/queues/{queue}/tasks/{task}/retry", intake.RoleAdmin, authSession, s.page(consolePage, c.RetryTask)},
	}
}

// Register adds every route to mux, admin routes behind their role, each
// with the security headers of headers.go (HTML pages are marked in the
// table with s.page and their kind).
func (s *Server) Register(mux *http.ServeMux) {
	for _, rt := range s.routes() {
		var h http.Handler = rt.handler
		switch rt.auth {
		case authBearer:
			h = s.admin(rt.role, rt.handler)
		case authSession:
			// The guard's own answers (sign in first, 403) are console
			// pages too.
			h = s.page(consolePage, s.console.Guard(rt.role, rt.handler).ServeHTTP)
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
			rec := &console.Recorder{ResponseWriter: w}
			next(rec, r.WithContext(ctx))
			if rec.Status == 0 { // wrote nothing: net/http answers 200
				rec.Status = http.StatusOK
			}
			s.audit(r, t, true, entry.Target, rec.Status)
		}
	})
}
