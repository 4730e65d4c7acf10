package telegram

import (
	"context"

	"github.com/paymtech/leadgate/integrations/crm"
)

// Channel tells salespeople in the Client's chat about routed leads, one
// Message each. It has the shape of the sales channel that jobs.Notifier
// takes: Name and Notify.
type Channel struct {
	Client *Client
	// IncludeContacts adds the person's phone and email to each message
	// (TELEGRAM_INCLUDE_CONTACTS). False, the default, leaves them in the CRM.
	IncludeContacts bool
}

// Name is System: it names the channel in notification tasks and, as the
// recipient, in the lead's disclosure log.
func (c *Channel) Name() string { return System }

// Notify sends the message about l, which the CRM received as r. Its errors
// are Send's.
func (c *Channel) Notify(ctx context.Context, l crm.Lead, r crm.Receipt) error {
	return c.Client.Send(ctx, Message(l, r, c.IncludeContacts))
}
