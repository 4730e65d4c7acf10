// Package email tells sales about routed leads by email, to one address
// (SALES_NOTIFY_EMAIL): in Russian, what to pick up and where to find it in
// the CRM, and nothing a salesperson cannot see there. The person's phone,
// email, tax id and message stay out of it.
package email

import (
	"context"

	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/integrations/mail"
	"github.com/paymtech/leadgate/templates"
)

// Channel sends the sales notification for each routed lead to To through
// Mailer. It has the shape of the sales channel that jobs.Notifier takes:
// Name and Notify.
type Channel struct {
	Mailer mail.Mailer
	From   mail.Address // MAIL_FROM and MAIL_FROM_NAME
	To     mail.Address // SALES_NOTIFY_EMAIL
}

// Name is "email": it names the channel in notification tasks and, as the
// recipient, in the lead's disclosure log.
func (c *Channel) Name() string { return "email" }

// Notify emails sales about l, which the CRM received as r: entity type,
// name, products, owner, risk and a link to the lead in the CRM (or its
// reference there). The message's category is "sales" and its Ref the lead
// id. Errors are the Mailer's, or the template's.
func (c *Channel) Notify(ctx context.Context, l crm.Lead, r crm.Receipt) error {
	view := templates.SalesLead{ID: l.ID, Entity: crm.EntityLabel(l.EntityType), Name: l.Name,
		RiskScore: l.Risk.Score, RiskSignals: l.Risk.Signals, CRMURL: r.URL, CRMRef: r.Ref}
	for _, p := range l.Products {
		view.Products = append(view.Products, templates.ProductLabel(templates.RU, p))
	}
	if a := l.Assignment; a != nil {
		view.Owner = a.Team + " / " + a.Owner
	}
	subject, text, html, err := templates.SalesEmail(view)
	if err != nil {
		return err
	}
	return c.Mailer.Send(ctx, mail.Message{From: c.From, To: []mail.Address{c.To}, Subject: subject, Text: text,
		HTML: html, Category: "sales", Ref: l.ID})
}
