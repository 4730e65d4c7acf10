package httpapi

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations/mail/sendgrid"
)

// maxEventBody bounds one posted batch of SendGrid events. SendGrid batches
// events into one post; 4 MiB is far above what it sends and far below what
// would hurt.
const maxEventBody = 4 << 20

// sendgridEvents counts the events posted to the webhook by SendGrid event
// name and what became of them. The event label is sendgrid.EventLabel's,
// so a sender cannot grow the label set.
var sendgridEvents = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "leadgate_sendgrid_events_total",
	Help: "SendGrid Event Webhook events by event and outcome (processed, ignored, duplicate, skipped, failed).",
}, []string{"event", "outcome"})

// sendgridWebhook returns the handler of SendGrid's Event Webhook, with the
// public key parsed once, here. Without a usable key every post is 503 (and
// SendGrid keeps it for a retry): events are never taken unsigned.
func (s *Server) sendgridWebhook() http.HandlerFunc {
	key, keyErr := sendgrid.ParseEventKey(s.opts.SendGridKey)
	if keyErr != nil && !errors.Is(keyErr, sendgrid.ErrNoEventKey) {
		s.log.Error("SendGrid event webhook will refuse every post", "reason", keyErr)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if keyErr != nil {
			s.log.Warn("SendGrid event post refused", "reason", keyErr)
			s.writeError(w, "sendgrid events", &intake.Error{Code: intake.EUnavailable, Message: "event webhook not configured"}, nil, "")
			return
		}
		s.sendgridEvents(w, r, key)
	}
}

// sendgridEvents verifies and applies one posted batch of events. A refused
// post learns nothing about why: SendGrid reads only the status.
func (s *Server) sendgridEvents(w http.ResponseWriter, r *http.Request, key *ecdsa.PublicKey) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, "sendgrid events", &intake.Error{Code: intake.ETooLarge, Message: "body over 4 MiB"}, nil, "")
			return
		}
		s.writeError(w, "sendgrid events", &intake.Error{Code: intake.EBadRequest, Message: "could not read the body"}, nil, "")
		return
	}
	if err := sendgrid.VerifyEvents(r.Header, body, key, s.now()); err != nil {
		s.log.Warn("SendGrid event post refused", "reason", err)
		s.writeError(w, "sendgrid events", &intake.Error{Code: intake.EUnauthorized, Message: "signature missing, invalid or stale"}, nil, "")
		return
	}
	events, err := sendgrid.ParseEvents(body)
	if err != nil {
		s.writeError(w, "sendgrid events", &intake.Error{Code: intake.EBadRequest, Message: err.Error()}, nil, "")
		return
	}
	n, err := s.applyEvents(r.Context(), events)
	if err != nil {
		// Nothing is lost: SendGrid posts the batch again, the events done
		// already are remembered, and the rest are idempotent.
		s.log.Error("SendGrid events not all applied", "processed", n.processed, "ignored", n.ignored, "err", err)
		s.writeError(w, "sendgrid events", &intake.Error{Code: intake.EUnavailable, Message: "try again later"}, nil, "")
		return
	}
	s.log.Info("SendGrid events applied", "processed", n.processed, "ignored", n.ignored,
		"duplicates", n.duplicates, "skipped", n.skipped)
	writeJSON(w, http.StatusOK, map[string]int{"processed": n.processed, "ignored": n.ignored})
}

// eventCounts is what became of a batch's events. ignored includes the
// duplicates and the skipped.
type eventCounts struct {
	processed, ignored, duplicates, skipped int
}

// applyEvents applies events in order and stops at the first Redis failure.
//
// Idempotence: an event with an sg_event_id is looked up before its action
// and remembered only after the action succeeded. Remembering first would
// lose a bounce or an unsubscribe if the process died between the two;
// remembering after can at worst repeat an action on SendGrid's retry, and
// Suppress and Withdraw are idempotent. Events that change nothing
// (delivered, open …) are neither looked up nor remembered. An event
// without an sg_event_id is applied and cannot be deduplicated.
func (s *Server) applyEvents(ctx context.Context, events []sendgrid.Event) (eventCounts, error) {
	var n eventCounts
	for _, e := range events {
		label := sendgrid.EventLabel(e.Event)
		act := e.Action()
		if act == sendgrid.ActionNone {
			n.ignored++
			sendgridEvents.WithLabelValues(label, "ignored").Inc()
			continue
		}
		person, ok := s.People.PersonOf(e.Email)
		if !ok {
			n.ignored++
			n.skipped++
			sendgridEvents.WithLabelValues(label, "skipped").Inc()
			continue
		}
		if e.ID != "" {
			seen, err := s.People.EventSeen(ctx, e.ID)
			if err != nil {
				sendgridEvents.WithLabelValues(label, "failed").Inc()
				return n, err
			}
			if seen {
				n.ignored++
				n.duplicates++
				sendgridEvents.WithLabelValues(label, "duplicate").Inc()
				continue
			}
		}
		if err := s.applyEvent(ctx, person, act, e); err != nil {
			sendgridEvents.WithLabelValues(label, "failed").Inc()
			return n, err
		}
		if e.ID != "" {
			if err := s.People.RememberEvent(ctx, e.ID); err != nil {
				sendgridEvents.WithLabelValues(label, "failed").Inc()
				return n, err
			}
		}
		n.processed++
		sendgridEvents.WithLabelValues(label, "processed").Inc()
	}
	return n, nil
}

// applyEvent suppresses or withdraws person as e asks. Addresses we do not
// hold are suppressed too: the list exists so that a later import or
// submission cannot mail them without a fresh confirmed opt-in.
func (s *Server) applyEvent(ctx context.Context, person string, act sendgrid.Action, e sendgrid.Event) error {
	p := intake.Proof{At: s.now().UTC(), Source: "sendgrid:" + e.Event, UserAgent: truncate(e.UserAgent, 512)}
	if e.Timestamp > 0 {
		p.At = time.Unix(int64(e.Timestamp), 0).UTC()
	}
	if ip, err := netip.ParseAddr(e.IP); err == nil {
		p.IP = ip.String()
	}
	switch act {
	case sendgrid.ActionSuppress:
		if err := s.People.Suppress(ctx, person, e.Event, p); err != nil {
			return fmt.Errorf("suppress after a SendGrid %s: %w", e.Event, err)
		}
	case sendgrid.ActionWithdraw:
		if _, err := s.People.Withdraw(ctx, person, p); err != nil {
			return fmt.Errorf("withdraw after a SendGrid %s: %w", e.Event, err)
		}
	}
	return nil
}
