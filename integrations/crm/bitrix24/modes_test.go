package bitrix24

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/integrations/crm/bitrix24/bitrix24test"
)

// count is how many calls of method f received.
func count(f *bitrix24test.Server, method string) int {
	return strings.Count(" "+strings.Join(methods(f), " ")+" ", " "+method+" ")
}

// has reports whether f holds entity id of type typ.
func has(f *bitrix24test.Server, typ, id string) bool {
	_, ok := f.Get(typ, id)
	return ok
}

// TestSimpleModePush is a portal without leads: the lead Push adds becomes a
// deal at once, the Receipt links the deal, and no retry makes a second one,
// not even when the lead is gone and only the deal is left to find.
func TestSimpleModePush(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		lose      bool // the first add's answer never arrives
		leadGone  bool // the converted lead is deleted before the retry
		newClient bool // the retry runs on another Client (no cached mode)
	}{
		{"answer received, not recorded", false, false, false},
		{"connection lost after the add", true, false, true},
		{"lead gone, deal left", false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []bitrix24test.Option{bitrix24test.SimpleMode()}
			if tt.lose {
				opts = append(opts, bitrix24test.WithFaults(func(method string, n int) *bitrix24test.Fault {
					if method == "crm.lead.add" && n == 1 {
						return &bitrix24test.Fault{Commit: true, Drop: true}
					}
					return nil
				}))
			}
			f := newFake(t, opts...)
			c := client(t, f, 5*time.Second)
			l := testLead()
			want := dealReceiptOf(f, "101", "1001")
			first, err := c.Push(context.Background(), l)
			if tt.lose {
				if err == nil {
					t.Fatal("first Push succeeded, want the lost answer's error")
				}
				secretFree(t, err)
			} else if err != nil || first != want {
				t.Fatalf("first Push = %+v, %v, want %+v", first, err, want)
			}
			deals := f.All(bitrix24test.TypeDeal)
			if len(deals) != 1 || deals[0].Fields["LEAD_ID"] != "101" {
				t.Fatalf("deals = %+v, want one made from lead 101", deals)
			}
			if tt.leadGone {
				if err := c.call(context.Background(), "crm.lead.delete", map[string]string{"id": "101"}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if tt.newClient {
				c = client(t, f, 5*time.Second)
			}
			second, err := c.Push(context.Background(), l)
			if err != nil || second != want {
				t.Fatalf("retry Push = %+v, %v, want %+v", second, err, want)
			}
			deals = f.All(bitrix24test.TypeDeal)
			if len(deals) != 1 {
				t.Fatalf("the fake holds %d deals after the retry, want 1", len(deals))
			}
			if d := deals[0].Fields; d["ORIGINATOR_ID"] != Originator || d["ORIGIN_ID"] != l.ID {
				t.Errorf("deal ORIGINATOR_ID, ORIGIN_ID = %q, %q, want %q, %q", d["ORIGINATOR_ID"], d["ORIGIN_ID"], Originator, l.ID)
			}
			if adds := count(f, "crm.lead.add"); adds != 1 {
				t.Errorf("%d adds, want 1", adds)
			}
		})
	}
}

// dealReceiptOf is the Receipt of lead ref converted into deal in f.
func dealReceiptOf(f *bitrix24test.Server, ref, deal string) crm.Receipt {
	return crm.Receipt{System: System, Ref: ref, URL: f.PortalURL() + "/crm/deal/details/" + deal + "/"}
}

// TestModeIsCached checks that the CRM mode is read once per modeTTL, not
// once per call.
func TestModeIsCached(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := client(t, f, 5*time.Second)
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	for i := range 3 {
		l := testLead()
		l.ID += string(rune('a' + i))
		if _, err := c.Push(context.Background(), l); err != nil {
			t.Fatalf("Push %d: %v", i, err)
		}
	}
	if n := count(f, "crm.settings.mode.get"); n != 1 {
		t.Errorf("the mode was read %d times for 3 pushes, want 1", n)
	}
	now = now.Add(modeTTL)
	l := testLead()
	l.ID += "z"
	if _, err := c.Push(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if n := count(f, "crm.settings.mode.get"); n != 2 {
		t.Errorf("the mode was read %d times, want it read again after modeTTL", n)
	}
}

// converted pushes testLead into f and converts it as an automation rule
// would, joined to company when it is not "".
func converted(t *testing.T, f *bitrix24test.Server, c *Client, company string) (crm.Receipt, bitrix24test.Conversion) {
	t.Helper()
	r, err := c.Push(context.Background(), testLead())
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	cv, ok := f.Convert(r.Ref, company)
	if !ok {
		t.Fatalf("Convert(%s, %q) failed", r.Ref, company)
	}
	return r, cv
}

// TestRectifyConverted checks that a correction reaches the deal, contact and
// company made from the lead, and nothing the lead was merely joined to.
func TestRectifyConverted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		simple     bool
		ref        bool // the Receipt was recorded
		joinShared bool // the lead was joined to an existing company
	}{
		{"classic, converted by automation", false, true, false},
		{"classic, receipt never recorded", false, false, false},
		{"classic, joined to an existing company", false, true, true},
		{"simple mode", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts []bitrix24test.Option
			if tt.simple {
				opts = append(opts, bitrix24test.SimpleMode())
			}
			f := newFake(t, opts...)
			c := client(t, f, 5*time.Second)
			other := f.Add(bitrix24test.TypeCompany, map[string]string{"TITLE": "Other LLP"})
			var r crm.Receipt
			var cv bitrix24test.Conversion
			if tt.simple {
				var err error
				if r, err = c.Push(context.Background(), testLead()); err != nil {
					t.Fatal(err)
				}
				lead, _ := f.Lead(r.Ref)
				cv = bitrix24test.Conversion{Deal: "1001", Contact: lead.Fields["CONTACT_ID"], Company: lead.Fields["COMPANY_ID"]}
			} else {
				company := ""
				if tt.joinShared {
					company = other
				}
				r, cv = converted(t, f, c, company)
			}
			before, _ := f.Get(bitrix24test.TypeContact, cv.Contact)
			if len(before.Phone) != 1 || len(before.Email) != 1 {
				t.Fatalf("contact made from the lead = %+v, want its phone and email", before)
			}
			l := testLead()
			l.Name, l.Phone, l.Email = "Testa Testova", "+77010000001", "testa@example.com"
			ref := r.Ref
			if !tt.ref {
				ref = ""
			}
			if err := c.Update(context.Background(), l, ref); err != nil {
				t.Fatalf("Update: %v", err)
			}
			lead, _ := f.Lead(r.Ref)
			if lead.Fields["NAME"] != l.Name || lead.Phone[0].Value != l.Phone {
				t.Errorf("lead = %+v, want it corrected", lead)
			}
			deal, _ := f.Get(bitrix24test.TypeDeal, cv.Deal)
			if want := "Юрлицо: Testa Testova"; deal.Fields["TITLE"] != want {
				t.Errorf("deal TITLE = %q, want %q", deal.Fields["TITLE"], want)
			}
			contact, _ := f.Get(bitrix24test.TypeContact, cv.Contact)
			wantPhone := []bitrix24test.Value{{ID: before.Phone[0].ID, TypeID: "PHONE", Value: l.Phone, ValueType: "WORK"}}
			wantEmail := []bitrix24test.Value{{ID: before.Email[0].ID, TypeID: "EMAIL", Value: l.Email, ValueType: "WORK"}}
			if contact.Fields["NAME"] != l.Name || !reflect.DeepEqual(contact.Phone, wantPhone) || !reflect.DeepEqual(contact.Email, wantEmail) {
				t.Errorf("contact = %+v, want NAME %q, PHONE %+v, EMAIL %+v", contact, l.Name, wantPhone, wantEmail)
			}
			company, _ := f.Get(bitrix24test.TypeCompany, cv.Company)
			wantTitle := l.Name
			if tt.joinShared {
				wantTitle = "Other LLP" // not made from our lead: someone else's record
			}
			if company.Fields["TITLE"] != wantTitle {
				t.Errorf("company TITLE = %q, want %q", company.Fields["TITLE"], wantTitle)
			}
		})
	}
}

// TestEraseConverted checks that an erasure deletes the lead and what was
// made from it alone, and only unlinks what other people share.
func TestEraseConverted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup converts the pushed lead and may give its contact or company
		// other links; it returns the conversion.
		setup func(t *testing.T, f *bitrix24test.Server, c *Client) bitrix24test.Conversion
		ref   bool // Erase gets the Receipt's Ref
		// What must survive: the contact and the company.
		keepContact, keepCompany bool
	}{
		{"made alone", func(t *testing.T, f *bitrix24test.Server, c *Client) bitrix24test.Conversion {
			_, cv := converted(t, f, c, "")
			return cv
		}, true, false, false},
		{"receipt never recorded", func(t *testing.T, f *bitrix24test.Server, c *Client) bitrix24test.Conversion {
			_, cv := converted(t, f, c, "")
			return cv
		}, false, false, false},
		{"joined to a company shared with another contact", func(t *testing.T, f *bitrix24test.Server, c *Client) bitrix24test.Conversion {
			co := f.Add(bitrix24test.TypeCompany, map[string]string{"TITLE": "Other LLP"})
			if !f.Link(bitrix24test.TypeCompany, co, f.Add(bitrix24test.TypeContact, map[string]string{"NAME": "Other Person"})) {
				t.Fatal("Link failed")
			}
			_, cv := converted(t, f, c, co)
			return cv
		}, true, false, true},
		{"company made from the lead, shared since", func(t *testing.T, f *bitrix24test.Server, c *Client) bitrix24test.Conversion {
			_, cv := converted(t, f, c, "")
			if !f.Link(bitrix24test.TypeCompany, cv.Company, f.Add(bitrix24test.TypeContact, map[string]string{"NAME": "Other Person"})) {
				t.Fatal("Link failed")
			}
			return cv
		}, true, false, true},
		{"contact linked to another deal", func(t *testing.T, f *bitrix24test.Server, c *Client) bitrix24test.Conversion {
			_, cv := converted(t, f, c, "")
			if !f.Link(bitrix24test.TypeDeal, f.Add(bitrix24test.TypeDeal, map[string]string{"TITLE": "Second order"}), cv.Contact) {
				t.Fatal("Link failed")
			}
			return cv
		}, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			c := client(t, f, 5*time.Second)
			cv := tt.setup(t, f, c)
			others := map[string][]string{} // what other entities existed, to check they survive
			for _, typ := range []string{bitrix24test.TypeDeal, bitrix24test.TypeContact, bitrix24test.TypeCompany} {
				for _, e := range f.All(typ) {
					if e.ID != cv.Deal && e.ID != cv.Contact && e.ID != cv.Company {
						others[typ] = append(others[typ], e.ID)
					}
				}
			}
			ref := "101"
			if !tt.ref {
				ref = ""
			}
			if err := c.Erase(context.Background(), testLead().ID, ref); err != nil {
				t.Fatalf("Erase: %v", err)
			}
			if n := len(f.Leads()); n != 0 {
				t.Errorf("the fake still holds %d leads", n)
			}
			if has(f, bitrix24test.TypeDeal, cv.Deal) {
				t.Errorf("deal %s made from the lead survived", cv.Deal)
			}
			if got := has(f, bitrix24test.TypeContact, cv.Contact); got != tt.keepContact {
				t.Errorf("contact %s kept = %v, want %v", cv.Contact, got, tt.keepContact)
			}
			if got := has(f, bitrix24test.TypeCompany, cv.Company); got != tt.keepCompany {
				t.Errorf("company %s kept = %v, want %v", cv.Company, got, tt.keepCompany)
			}
			if tt.keepCompany {
				linked := f.ContactIDs(bitrix24test.TypeCompany, cv.Company)
				if slices.Contains(linked, cv.Contact) != tt.keepContact || len(linked) == 0 {
					t.Errorf("company %s links contacts %v: want the others' kept, the erased one unlinked", cv.Company, linked)
				}
			}
			for typ, ids := range others {
				for _, id := range ids {
					if !has(f, typ, id) {
						t.Errorf("%s %s, not made from the lead, was deleted", typ, id)
					}
				}
			}
			// Erasing again, as a retried task would, is still success.
			if err := c.Erase(context.Background(), testLead().ID, ref); err != nil {
				t.Errorf("second Erase: %v", err)
			}
		})
	}
}

// TestEraseSimpleMode erases a lead filed in a portal without leads: by the
// Receipt, and by ORIGIN_ID alone after the converted lead was deleted.
func TestEraseSimpleMode(t *testing.T) {
	t.Parallel()
	for _, leadGone := range []bool{false, true} {
		t.Run(map[bool]string{false: "by ref", true: "lead gone, deal left"}[leadGone], func(t *testing.T) {
			t.Parallel()
			f := newFake(t, bitrix24test.SimpleMode())
			c := client(t, f, 5*time.Second)
			r, err := c.Push(context.Background(), testLead())
			if err != nil {
				t.Fatal(err)
			}
			ref := r.Ref
			if leadGone {
				if err := c.call(context.Background(), "crm.lead.delete", map[string]string{"id": r.Ref}, nil); err != nil {
					t.Fatal(err)
				}
				ref = ""
			}
			if err := c.Erase(context.Background(), testLead().ID, ref); err != nil {
				t.Fatalf("Erase: %v", err)
			}
			for _, typ := range []string{bitrix24test.TypeLead, bitrix24test.TypeDeal, bitrix24test.TypeContact, bitrix24test.TypeCompany} {
				if left := f.All(typ); len(left) != 0 {
					t.Errorf("%d %s left: %+v", len(left), typ, left)
				}
			}
		})
	}
}
