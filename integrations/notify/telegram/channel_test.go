package telegram

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// Channel is a jobs.SalesChannel; jobs cannot be imported here, so the
// interface is spelled out.
var _ interface {
	Name() string
	Notify(context.Context, crm.Lead, crm.Receipt) error
} = (*Channel)(nil)

func TestChannel(t *testing.T) {
	t.Parallel()
	for _, include := range []bool{false, true} {
		fb := newFakeBot(t, nil)
		ch := &Channel{Client: newTestClient(t, fb.URL, 0), IncludeContacts: include}
		if ch.Name() != "telegram" {
			t.Fatalf("Name() = %q, want telegram: it names queued tasks and disclosure records", ch.Name())
		}
		if err := ch.Notify(t.Context(), testLead(), testReceipt); err != nil {
			t.Fatalf("Notify: %v", err)
		}
		got := fb.messages()
		if len(got) != 1 || got[0]["text"] != Message(testLead(), testReceipt, include) {
			t.Fatalf("IncludeContacts %t: the bot got %v, want one Message", include, got)
		}
		if text := got[0]["text"].(string); strings.Contains(text, "+77010000000") != include {
			t.Errorf("IncludeContacts %t: phone in the message is %t", include, !include)
		}
	}
}

func TestChannelFailure(t *testing.T) {
	t.Parallel()
	fb := newFakeBot(t, func(w http.ResponseWriter) {
		reply(w, http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`)
	})
	ch := &Channel{Client: newTestClient(t, fb.URL, 0)}
	err := ch.Notify(t.Context(), testLead(), testReceipt)
	if integrations.KindOf(err) != integrations.Permanent {
		t.Fatalf("Notify to a missing chat = %v, want a permanent failure", err)
	}
	assertNoSecrets(t, err, fb.URL)
}
