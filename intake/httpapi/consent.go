package httpapi

import (
	"net/http"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/templates"
)

// unsubscribe serves the List-Unsubscribe link of marketing mail. A GET
// shows a one-button page (a link scanner must not unsubscribe anyone); a
// POST withdraws marketing consent at once — the page's button, or a mail
// client's RFC 8058 one-click POST with body List-Unsubscribe=One-Click.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	lang := s.lang(r)
	person, valid := s.Keys.UnsubscribePerson(r.URL.Query().Get("token"))
	page := templates.ConfirmPage{Lang: lang, Purpose: templates.PurposeUnsubscribe, Action: r.URL.RequestURI(), State: templates.ConfirmAsk,
		Company: s.opts.Company}
	status := http.StatusOK
	switch {
	case !valid:
		page.State, status = templates.ConfirmInvalid, http.StatusBadRequest
	case r.Method != http.MethodPost:
		// A link already used (or a person never subscribed) changes
		// nothing: say so rather than ask. A failed read just asks.
		if state, _, err := s.People.MarketingDone(r.Context(), person); err == nil &&
			(state == intake.MarketingWithdrawn || state == "") {
			page.State = templates.ConfirmAlready
		}
	case r.Method == http.MethodPost:
		_, err := s.People.Withdraw(r.Context(), person, intake.Proof{At: s.now(), IP: clientIP(r, s.opts.TrustedProxies),
			UserAgent: truncate(r.UserAgent(), 512), Source: "unsubscribe_link"})
		if err != nil { // the button again: the link is fine, a retry may work
			s.log.Error("unsubscribe", "err", err)
			status = http.StatusServiceUnavailable
			break
		}
		// Withdrawn now, or already: either way the person is not
		// subscribed, which is what they asked to hear.
		page.State = templates.ConfirmDone
		s.log.Info("marketing consent withdrawn", "source", "unsubscribe_link")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := templates.RenderConfirm(w, page); err != nil {
		s.log.Error("render unsubscribe page", "err", err)
	}
}

// confirmOptin serves the link of the double opt-in email. A GET only shows
// a button — link scanners that prefetch must not confirm anyone — and the
// POST it makes confirms, recording time, IP and browser as proof.
func (s *Server) confirmOptin(w http.ResponseWriter, r *http.Request) {
	lang := s.lang(r)
	person, valid := s.Keys.OptinPerson(r.URL.Query().Get("token"), s.now())
	page := templates.ConfirmPage{Lang: lang, Action: r.URL.RequestURI(), State: "ask", Company: s.opts.Company}
	status := http.StatusOK
	switch {
	case !valid:
		page.State, status = "invalid", http.StatusBadRequest
	case r.Method != http.MethodPost:
		// Confirmed, with no change of details waiting for this link: the
		// link was used already. A failed read just asks.
		if state, waiting, err := s.People.MarketingDone(r.Context(), person); err == nil &&
			state == intake.MarketingActive && !waiting {
			page.State = templates.ConfirmAlready
		}
	case r.Method == http.MethodPost:
		ip := clientIP(r, s.opts.TrustedProxies)
		ok, err := s.People.ConfirmMarketing(r.Context(), person, intake.Proof{At: s.now(), IP: ip,
			UserAgent: truncate(r.UserAgent(), 512)})
		switch {
		case err != nil: // the button again, not "invalid": the link is fine, a retry may work
			s.log.Error("confirm opt-in", "err", err)
			status = http.StatusServiceUnavailable
		case !ok:
			page.State, status = "invalid", http.StatusGone
		default:
			page.State = "done"
			s.log.Info("marketing opt-in confirmed")
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := templates.RenderConfirm(w, page); err != nil {
		s.log.Error("render confirm page", "err", err)
	}
}
