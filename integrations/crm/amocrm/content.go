package amocrm

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paymtech/leadgate/integrations/crm"
)

// Entity types of crm.Lead.
const (
	entityLegal = "legal_entity"
	entitySole  = "sole_proprietor"
)

// tagLeadgate marks every lead this driver creates, so sales can filter them.
const tagLeadgate = "leadgate"

// maxTitle is the longest lead name sent, in characters.
const maxTitle = 255

// entityLabel names an entity type for people.
func entityLabel(entityType string) string {
	switch entityType {
	case entityLegal:
		return "Legal entity"
	case entitySole:
		return "Sole proprietor"
	}
	return "Connection request"
}

// title is the lead's name: entity type, name and products, like
// "Legal entity · Test Testov · acquiring, payment_links". It never holds
// the phone or email.
func title(l crm.Lead) string {
	parts := []string{entityLabel(l.EntityType)}
	if l.Name != "" {
		parts = append(parts, l.Name)
	}
	if len(l.Products) > 0 {
		parts = append(parts, strings.Join(l.Products, ", "))
	}
	t := strings.Join(parts, " · ")
	if utf8.RuneCountInString(t) <= maxTitle {
		return t
	}
	r := []rune(t)[:maxTitle-1]
	return string(r) + "…"
}

// tagNames are the lead's tags: "leadgate", each product, then the entity
// type, without repeats or empty names.
func tagNames(l crm.Lead) []string {
	names := []string{tagLeadgate}
	for _, n := range append(slices.Clone(l.Products), l.EntityType) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// noteMarker is the first line of the note for leadgate lead id: how a
// retried Push recognises a note it already added.
func noteMarker(id string) string { return "leadgate request " + id }

// isNoteFor reports whether a note's text is the one added for lead id.
func isNoteFor(text, id string) bool {
	m := noteMarker(id)
	return text == m || strings.HasPrefix(text, m+"\n")
}

// mergedLine is the second line of the note on a lead that amoCRM's
// duplicate control merged the request into: it tells sales why the
// request is there, and tells Update that the lead, its contact and
// company are not leadgate's to overwrite.
const mergedLine = "amoCRM's duplicate control merged this request into this existing lead; leadgate changes nothing here but this note."

// isMergedNote reports whether a note leadgate added (isNoteFor) is that of
// a request merged into an existing lead.
func isMergedNote(text string) bool {
	_, rest, _ := strings.Cut(text, "\n")
	return rest == mergedLine || strings.HasPrefix(rest, mergedLine+"\n")
}

// noteText is the note added to the lead: what the lead's fields cannot hold
// — tax id, products, language, consent, risk and the message. The first
// line names the leadgate id (see noteMarker).
func noteText(l crm.Lead) string { return noteBody(l, false) }

// mergedNoteText is the note added to an existing lead that l was merged
// into: noteText with mergedLine as its second line.
func mergedNoteText(l crm.Lead) string { return noteBody(l, true) }

func noteBody(l crm.Lead, merged bool) string {
	var b strings.Builder
	b.WriteString(noteMarker(l.ID))
	if merged {
		b.WriteString("\n" + mergedLine)
	}
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(&b, "\n%s: %s", label, value)
		}
	}
	line("Type", entityLabel(l.EntityType))
	line("BIN/IIN", l.TaxID)
	line("Products", strings.Join(l.Products, ", "))
	line("Answer in", l.Lang)
	line("Received", utc(l.ReceivedAt))
	consent := "processing of personal data under privacy policy " + l.Consent.PolicyVersion
	if l.Consent.PolicyURL != "" {
		consent += " (" + l.Consent.PolicyURL + ")"
	}
	consent += ", given " + utc(l.Consent.GivenAt) + "; marketing opt-in: " + yesNo(l.Consent.Marketing)
	line("Consent", consent)
	risk := fmt.Sprintf("%d/100", l.Risk.Score)
	if len(l.Risk.Signals) > 0 {
		risk += " (" + strings.Join(l.Risk.Signals, ", ") + ")"
	}
	line("Risk", risk)
	if l.Message != "" {
		b.WriteString("\n\nMessage:\n")
		b.WriteString(l.Message)
	}
	return b.String()
}

// utc formats t as RFC 3339 in UTC, or "" for the zero time.
func utc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// yesNo spells a bool for people.
func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}
