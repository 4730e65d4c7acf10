package bitrix24

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// Update overwrites the person's fields of lead ref with l's: NAME, TITLE
// (it shows the name), COMPANY_TITLE for a legal entity, PHONE and EMAIL.
// Bitrix24 appends a multifield value sent without the ID of a stored one,
// so Update reads the stored PHONE and EMAIL values (crm.lead.get) and sends
// the new value under the first one's ID and an empty VALUE under the
// others' (which removes them): the lead ends up with exactly the corrected
// phone and email. Bitrix24 leads have no language field; the language only
// appears in COMMENTS, which Update leaves alone.
//
// A converted lead (STATUS_ID CONVERTED) has handed the person's data on:
// Update corrects what was made from it too (LEAD_ID = the lead): the
// deal's TITLE, the contact's NAME, PHONE and EMAIL (replaced the same way)
// and, for a legal entity, the company's TITLE. A contact or company the
// lead was merely joined to (an existing client, LEAD_ID another lead or
// none) is someone's older record and is left alone.
//
// An empty ref means the Receipt was never recorded: the lead is looked up
// by ORIGIN_ID (in simple mode, the deal too), and if Bitrix24 has none
// there is nothing to correct. A ref Bitrix24 no longer knows is a
// Permanent error with Code "not found".
func (c *Client) Update(ctx context.Context, l crm.Lead, ref string) error {
	if ref == "" {
		ids, err := c.find(ctx, l.ID)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			// The lead may be gone while the deal made from it (stamped by
			// Push) is not.
			deals, err := c.dealsOnly(ctx, l.ID)
			if err != nil || len(deals) == 0 {
				return err
			}
			return c.rectifyMade(ctx, l, deals)
		}
		ref = ids[0]
	}
	if !isID(ref) {
		return &integrations.Error{System: System, Op: "crm.lead.update", Code: "invalid ref", Kind: integrations.Permanent}
	}
	var stored struct {
		Status string             `json:"STATUS_ID"`
		Phone  []storedMultifield `json:"PHONE"`
		Email  []storedMultifield `json:"EMAIL"`
	}
	if err := c.call(ctx, "crm.lead.get", map[string]string{"id": ref}, &stored); err != nil {
		return err
	}
	fields := map[string]any{"NAME": l.Name, "TITLE": title(l)}
	if l.EntityType == "legal_entity" {
		fields["COMPANY_TITLE"] = l.Name
	}
	if v := replace(stored.Phone, l.Phone); len(v) > 0 {
		fields["PHONE"] = v
	}
	if v := replace(stored.Email, l.Email); len(v) > 0 {
		fields["EMAIL"] = v
	}
	if err := c.update(ctx, "lead", ref, fields); err != nil {
		return err
	}
	if stored.Status != statusConverted {
		return nil
	}
	deals, err := c.list(ctx, "deal", map[string]string{"LEAD_ID": ref})
	if err != nil {
		return err
	}
	return c.rectifyMade(ctx, l, append(deals, entity{LeadID: optID(ref)}))
}

// dealsOnly returns, in simple mode, the deals stamped for leadgate's lead
// origin; in classic mode none (a deal there is only ever reached through
// its lead).
func (c *Client) dealsOnly(ctx context.Context, origin string) ([]entity, error) {
	simple, err := c.simple(ctx)
	if err != nil || !simple {
		return nil, err
	}
	return c.dealsByOrigin(ctx, origin)
}

// rectifyMade corrects what was made from the leads of deals: each deal
// (an entry without ID only names a lead), and the contacts and companies
// whose LEAD_ID is one of those leads. Entities deleted meanwhile are
// skipped.
func (c *Client) rectifyMade(ctx context.Context, l crm.Lead, deals []entity) error {
	var leads []string
	for _, d := range deals {
		if d.ID != "" {
			if err := c.update(ctx, "deal", string(d.ID), map[string]any{"TITLE": title(l)}); err != nil && !isNotFound(err) {
				return err
			}
		}
		if d.LeadID != "" && !slices.Contains(leads, string(d.LeadID)) {
			leads = append(leads, string(d.LeadID))
		}
	}
	for _, lead := range leads {
		contacts, err := c.list(ctx, "contact", map[string]string{"LEAD_ID": lead})
		if err != nil {
			return err
		}
		for _, ct := range contacts {
			if err := c.rectifyContact(ctx, l, string(ct.ID)); err != nil && !isNotFound(err) {
				return err
			}
		}
		if l.EntityType != "legal_entity" {
			continue
		}
		companies, err := c.list(ctx, "company", map[string]string{"LEAD_ID": lead})
		if err != nil {
			return err
		}
		for _, co := range companies {
			if err := c.update(ctx, "company", string(co.ID), map[string]any{"TITLE": l.Name}); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// rectifyContact overwrites contact id's NAME, PHONE and EMAIL with l's, the
// multifields replaced as on the lead.
func (c *Client) rectifyContact(ctx context.Context, l crm.Lead, id string) error {
	var stored struct {
		Phone []storedMultifield `json:"PHONE"`
		Email []storedMultifield `json:"EMAIL"`
	}
	if err := c.call(ctx, "crm.contact.get", map[string]string{"id": id}, &stored); err != nil {
		return err
	}
	fields := map[string]any{"NAME": l.Name}
	if v := replace(stored.Phone, l.Phone); len(v) > 0 {
		fields["PHONE"] = v
	}
	if v := replace(stored.Email, l.Email); len(v) > 0 {
		fields["EMAIL"] = v
	}
	return c.update(ctx, "contact", id, fields)
}

// update calls crm.{typ}.update for id with fields; an answer other than
// true is a Permanent "not updated".
func (c *Client) update(ctx context.Context, typ, id string, fields map[string]any) error {
	method := "crm." + typ + ".update"
	var ok bool
	if err := c.call(ctx, method, map[string]any{"id": id, "fields": fields}, &ok); err != nil {
		return err
	}
	if !ok {
		return &integrations.Error{System: System, Op: method, Status: http.StatusOK, Code: "not updated", Kind: integrations.Permanent}
	}
	return nil
}

// storedMultifield is a PHONE or EMAIL value as crm.lead.get returns it.
type storedMultifield struct {
	ID    leadID `json:"ID"`
	Value string `json:"VALUE"`
}

// replace is the multifield update that leaves exactly value (none when
// value is empty) in place of the stored values.
func replace(stored []storedMultifield, value string) []multifield {
	if len(stored) == 0 {
		return work(value)
	}
	out := make([]multifield, 0, len(stored))
	for i, s := range stored {
		if i == 0 && value != "" {
			out = append(out, multifield{ID: string(s.ID), Value: value, ValueType: "WORK"})
			continue
		}
		out = append(out, multifield{ID: string(s.ID), Value: ""})
	}
	return out
}

// Erase deletes lead ref and any other lead filed for leadgate's lead leadID
// (a Receipt never recorded, or a duplicate from a race), so no copy is left
// behind, and what was made from them when they were converted:
//
//   - every deal made from them (LEAD_ID; in simple mode also a deal stamped
//     with ORIGIN_ID leadID) is deleted: a deal belongs to one request;
//   - a contact made from them is deleted unless another deal is linked to
//     it (the same person came back); then it only loses its links to the
//     deleted deals and leads;
//   - a company made from them is deleted unless another contact or deal is
//     linked to it (a company other people share); then it is only unlinked.
//
// A contact or company the lead was merely joined to (LEAD_ID another lead
// or none) is not ours to delete. The leads go last: a retry after a failure
// halfway finds them by ORIGIN_ID and follows them again. An entity Bitrix24
// does not know ("Not found") is already gone, which is success.
func (c *Client) Erase(ctx context.Context, leadID, ref string) error {
	var ids []string
	if ref != "" {
		if !isID(ref) {
			return &integrations.Error{System: System, Op: "crm.lead.delete", Code: "invalid ref", Kind: integrations.Permanent}
		}
		ids = append(ids, ref)
	}
	var deals []entity
	if leadID != "" {
		found, err := c.find(ctx, leadID)
		if err != nil {
			return err
		}
		for _, id := range found {
			if id != ref {
				ids = append(ids, id)
			}
		}
		if deals, err = c.dealsOnly(ctx, leadID); err != nil {
			return err
		}
	}
	for _, id := range ids {
		var lead struct {
			Status string `json:"STATUS_ID"`
		}
		err := c.call(ctx, "crm.lead.get", map[string]string{"id": id}, &lead)
		if err != nil && !isNotFound(err) {
			return err
		}
		if lead.Status == statusConverted {
			deals = append(deals, entity{LeadID: optID(id)})
		}
	}
	if err := c.eraseMade(ctx, deals); err != nil {
		return err
	}
	for _, id := range ids {
		if err := c.remove(ctx, "lead", id); err != nil {
			return err
		}
	}
	return nil
}

// eraseMade deletes what was made from the leads of deals (an entry without
// ID only names a lead) as Erase describes.
func (c *Client) eraseMade(ctx context.Context, deals []entity) error {
	var leads []string
	var made []string // deal ids
	for _, d := range deals {
		if d.ID != "" && !slices.Contains(made, string(d.ID)) {
			made = append(made, string(d.ID))
		}
		if d.LeadID != "" && !slices.Contains(leads, string(d.LeadID)) {
			leads = append(leads, string(d.LeadID))
		}
	}
	var contacts, companies []string
	for _, lead := range leads {
		for typ, into := range map[string]*[]string{"deal": &made, "contact": &contacts, "company": &companies} {
			found, err := c.list(ctx, typ, map[string]string{"LEAD_ID": lead})
			if err != nil {
				return err
			}
			for _, e := range found {
				if !slices.Contains(*into, string(e.ID)) {
					*into = append(*into, string(e.ID))
				}
			}
		}
	}
	for _, id := range made {
		if err := c.remove(ctx, "deal", id); err != nil {
			return err
		}
	}
	// Our deals are gone: any deal still linked is someone else's.
	for _, id := range contacts {
		others, err := c.list(ctx, "deal", map[string]string{"CONTACT_ID": id})
		if err != nil {
			return err
		}
		if len(others) > 0 {
			continue
		}
		if err := c.remove(ctx, "contact", id); err != nil {
			return err
		}
	}
	for _, id := range companies {
		shared, err := c.companyShared(ctx, id)
		if err != nil {
			return err
		}
		if shared {
			continue
		}
		if err := c.remove(ctx, "company", id); err != nil {
			return err
		}
	}
	return nil
}

// companyShared reports whether company id is still linked to a contact or a
// deal (ours are deleted by now, so these are other people's).
func (c *Client) companyShared(ctx context.Context, id string) (bool, error) {
	var linked []struct {
		ContactID leadID `json:"CONTACT_ID"`
	}
	err := c.call(ctx, "crm.company.contact.items.get", map[string]string{"id": id}, &linked)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil || len(linked) > 0 {
		return len(linked) > 0, err
	}
	deals, err := c.list(ctx, "deal", map[string]string{"COMPANY_ID": id})
	return len(deals) > 0, err
}

// remove calls crm.{typ}.delete for id; "Not found" is success.
func (c *Client) remove(ctx context.Context, typ, id string) error {
	err := c.call(ctx, "crm."+typ+".delete", map[string]string{"id": id}, nil)
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// isNotFound reports whether err is Bitrix24's "Not found" for a lead id.
func isNotFound(err error) bool {
	e, ok := errors.AsType[*integrations.Error](err)
	return ok && e.Code == codeNotFound
}
