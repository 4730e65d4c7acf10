package amocrm

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
)

// addEarlierLead stores a lead someone created the day before the test
// lead was received, whose contact has the test lead's phone: what amoCRM's
// duplicate control merges the test lead into. It returns the lead's and
// the contact's ids.
func (f *fakeAmo) addEarlierLead() (int, int) {
	id := f.addLead("Earlier request", map[int]string{leadIDField: "01964c2e-0000-7000-8000-000000000000"})
	f.mu.Lock()
	defer f.mu.Unlock()
	ld := f.leads[id]
	ld.CreatedAt = legalLead().ReceivedAt.Add(-24 * time.Hour).Unix()
	f.contacts[ld.ContactID].Phones = []fakeValue{{"+77010000000", "WORK"}}
	return id, ld.ContactID
}

// TestPushMerged: when amoCRM answers the create with "merged": true, the
// request is recorded as the lead amoCRM merged it into — its id is the
// Receipt — and that lead is never treated as one leadgate created: Push
// only adds the request's note, marked as merged; a retry adds nothing
// more; and Update corrects that note but never the contact, lead or
// company, and says so with a Permanent error. Whether amoCRM's merge
// copies the incoming leadgate id onto the existing lead is not
// documented, so both are tried.
func TestPushMerged(t *testing.T) {
	t.Parallel()
	for _, copies := range []bool{false, true} {
		t.Run("merge copies fields "+strconv.FormatBool(copies), func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			existing, contactID := f.addEarlierLead()
			f.mu.Lock()
			f.dupControl, f.mergeFields = true, copies
			f.mu.Unlock()
			leadsBefore, contactsBefore, _, _ := f.state()
			c := newClient(t, f, nil)

			rc, err := c.Push(context.Background(), legalLead())
			if err != nil {
				t.Fatalf("Push: %v", err)
			}
			if rc.Ref != strconv.Itoa(existing) || !strings.HasSuffix(rc.URL, "/leads/detail/"+strconv.Itoa(existing)) {
				t.Errorf("Receipt = %+v, want the existing lead %d", rc, existing)
			}
			leads, contacts, companies, notes := f.state()
			if len(leads) != 1 || len(contacts) != 1 || len(companies) != 0 {
				t.Errorf("amoCRM holds %d leads, %d contacts, %d companies; want the existing 1, 1, 0", len(leads), len(contacts), len(companies))
			}
			if len(notes) != 1 || notes[0].LeadID != existing || notes[0].Text != mergedNoteText(legalLead()) || !isMergedNote(notes[0].Text) {
				t.Fatalf("notes = %+v, want the merged request's note on lead %d", notes, existing)
			}
			if !copies && !reflect.DeepEqual(leads, leadsBefore) {
				t.Errorf("existing lead changed: %+v, was %+v", leads, leadsBefore)
			}

			// A retry (the task ran again) adds nothing.
			rc2, err := c.Push(context.Background(), legalLead())
			if err != nil || rc2 != rc {
				t.Fatalf("second Push = %+v, %v; want %+v", rc2, err, rc)
			}
			if _, _, _, notes := f.state(); len(notes) != 1 {
				t.Errorf("notes after a retry = %+v, want still one", notes)
			}

			fixed := legalLead()
			fixed.Name = "Test Testova"
			fixed.Phone = "+77010000001"
			err = c.Update(context.Background(), fixed, rc.Ref)
			var e *integrations.Error
			if !errors.As(err, &e) || e.Kind != integrations.Permanent || e.Code != codeMerged {
				t.Fatalf("Update = %v, want Permanent %q", err, codeMerged)
			}
			assertClean(t, f, err)
			leads, contacts, _, notes = f.state()
			if !reflect.DeepEqual(contacts, contactsBefore) || contacts[contactID].Name != "Test Contact" {
				t.Errorf("contacts = %+v, want them untouched: %+v", contacts, contactsBefore)
			}
			if leads[0].Name != "Earlier request" {
				t.Errorf("existing lead renamed to %q", leads[0].Name)
			}
			if len(notes) != 1 || notes[0].Text != mergedNoteText(fixed) {
				t.Errorf("notes = %+v, want the request's note corrected", notes)
			}
		})
	}
}

// TestPushMergedNoteFailed: the note is the only trace of the request on a
// lead it was merged into, so Push reports its failure; the retry, safe
// since nothing was created, is merged again and adds it.
func TestPushMergedNoteFailed(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	existing, _ := f.addEarlierLead()
	f.mu.Lock()
	f.dupControl = true
	f.mu.Unlock()
	f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/notes") {
			writeProblem(w, http.StatusBadGateway, nil)
			return true
		}
		return false
	})
	c := newClient(t, f, nil)
	_, err := c.Push(context.Background(), legalLead())
	if integrations.KindOf(err) != integrations.Temporary {
		t.Fatalf("Push with the note failing = %v, want Temporary", err)
	}
	assertClean(t, f, err)
	f.setIntercept(nil)
	rc, err := c.Push(context.Background(), legalLead())
	if err != nil || rc.Ref != strconv.Itoa(existing) {
		t.Fatalf("retried Push = %+v, %v; want lead %d", rc, err, existing)
	}
	leads, _, _, notes := f.state()
	if len(leads) != 1 || len(notes) != 1 || !isMergedNote(notes[0].Text) {
		t.Errorf("leads = %d, notes = %+v; want the existing lead with the merged note", len(leads), notes)
	}
}

// TestUpdateLeadOlderThanRequest: a lead that holds the request's id but
// was created before the request was received cannot be one leadgate made
// for it: it is one the request was merged into (its note lost), and
// Update leaves its contact alone.
func TestUpdateLeadOlderThanRequest(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	id, _ := f.addEarlierLead()
	f.mu.Lock()
	f.leads[id].Fields[leadIDField] = testLeadID
	f.mu.Unlock()
	_, contactsBefore, _, _ := f.state()
	err := newClient(t, f, nil).Update(context.Background(), legalLead(), strconv.Itoa(id))
	var e *integrations.Error
	if !errors.As(err, &e) || e.Kind != integrations.Permanent || e.Code != codeMerged {
		t.Fatalf("Update = %v, want Permanent %q", err, codeMerged)
	}
	_, contacts, _, notes := f.state()
	if !reflect.DeepEqual(contacts, contactsBefore) {
		t.Errorf("contacts = %+v, want them untouched", contacts)
	}
	if len(notes) != 1 || notes[0].Text != mergedNoteText(legalLead()) {
		t.Errorf("notes = %+v, want the merged request's note added", notes)
	}
}
