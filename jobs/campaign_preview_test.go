package jobs_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/integrations/mail"
	"github.com/paymtech/leadgate/templates"
)

// TestSegmentCountIsWhoTheCampaignReaches: the console's count of a
// segment (SegmentCount) is the number of recipients a campaign to that
// segment then has; a person whose opt-in is not confirmed counts nowhere.
func TestSegmentCountIsWhoTheCampaignReaches(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	for n, spec := range []struct{ lang, entity string }{{"ru", intake.LegalEntity}, {"kk", intake.LegalEntity},
		{"ru", intake.SoleProprietor}, {"en", intake.LegalEntity}} {
		e.confirm(t, e.subscriber(t, n, spec.lang, spec.entity, true))
	}
	e.subscriber(t, 9, "ru", intake.LegalEntity, true) // not confirmed
	c := e.campaigner(&fakeMailer{SendFn: func(context.Context, mail.Message) error { return nil }}, 0)
	for _, seg := range []intake.Segment{{}, {Lang: "ru"}, {EntityType: intake.LegalEntity}, {Products: []string{"pos"}},
		{Lang: "kk", Products: []string{"acquiring", "pos"}}} {
		n, err := e.store.Campaigns.SegmentCount(context.Background(), seg)
		if err != nil {
			t.Fatal(err)
		}
		camp := e.newCampaign(t, seg)
		if err := c.ProcessTask(context.Background(), campaignTask(camp.ID)); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.store.Campaigns.Campaign(context.Background(), camp.ID); int64(got.Recipients) != n {
			t.Errorf("segment %+v: counted %d, the campaign had %d recipients", seg, n, got.Recipients)
		}
	}
}

// TestCampaignPreviewIsTheMailSent: the console's preview is the HTML the
// sender mails, but for the recipient's token, which a preview has not.
func TestCampaignPreviewIsTheMailSent(t *testing.T) {
	t.Parallel()
	e := setupRedis(t, time.Now)
	person := e.subscriber(t, 1, "ru", intake.LegalEntity, true)
	e.confirm(t, person)
	var (
		mu   sync.Mutex
		msgs []mail.Message
	)
	c := e.campaigner(&fakeMailer{SendFn: func(_ context.Context, m mail.Message) error {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, m)
		return nil
	}}, 0)
	camp := e.newCampaign(t, intake.Segment{})
	preview, err := c.Preview(camp, "ru")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ProcessTask(context.Background(), campaignTask(camp.ID)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	sent := strings.ReplaceAll(msgs[0].HTML, templates.UnsubscribeSlot, "-")
	if preview.HTML != sent || preview.Subject != msgs[0].Subject || !strings.Contains(preview.HTML, "/v1/unsubscribe?lang=ru&amp;token=-") {
		t.Errorf("the preview differs from the mail sent:\n%s\n---\n%s", preview.HTML, sent)
	}
}
