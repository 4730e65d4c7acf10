package bitrix24

import (
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/paymtech/leadgate/integrations/crm"
)

// multifield is one PHONE or EMAIL value as sent: with ID it replaces that
// stored value (or removes it, when VALUE is empty); without, it adds one.
type multifield struct {
	ID        string `json:"ID,omitempty"`
	Value     string `json:"VALUE"`
	ValueType string `json:"VALUE_TYPE,omitempty"`
}

// leadFields are the fields crm.lead.add receives.
type leadFields struct {
	Title             string       `json:"TITLE"`
	Name              string       `json:"NAME,omitempty"`
	CompanyTitle      string       `json:"COMPANY_TITLE,omitempty"`
	Phone             []multifield `json:"PHONE,omitempty"`
	Email             []multifield `json:"EMAIL,omitempty"`
	Comments          string       `json:"COMMENTS"`
	SourceID          string       `json:"SOURCE_ID"`
	SourceDescription string       `json:"SOURCE_DESCRIPTION,omitempty"`
	UTMSource         string       `json:"UTM_SOURCE,omitempty"`
	UTMMedium         string       `json:"UTM_MEDIUM,omitempty"`
	UTMCampaign       string       `json:"UTM_CAMPAIGN,omitempty"`
	AssignedByID      string       `json:"ASSIGNED_BY_ID,omitempty"`
	OriginatorID      string       `json:"ORIGINATOR_ID"`
	OriginID          string       `json:"ORIGIN_ID"`
}

// newLeadFields maps l onto a Bitrix24 lead. SOURCE_ID WEBFORM is the
// portal's built-in "CRM form" source.
func newLeadFields(l crm.Lead) leadFields {
	f := leadFields{
		Title:             title(l),
		Name:              l.Name,
		Phone:             work(l.Phone),
		Email:             work(l.Email),
		Comments:          comments(l),
		SourceID:          "WEBFORM",
		SourceDescription: l.Metadata.PageURL,
		UTMSource:         l.Metadata.UTMSource,
		UTMMedium:         l.Metadata.UTMMedium,
		UTMCampaign:       l.Metadata.UTMCampaign,
		OriginatorID:      Originator,
		OriginID:          l.ID,
	}
	if l.EntityType == "legal_entity" {
		f.CompanyTitle = l.Name
	}
	if l.Assignment != nil {
		f.AssignedByID = l.Assignment.CRMUserID
	}
	return f
}

// work is value as a new WORK multifield, or none when value is empty.
func work(value string) []multifield {
	if value == "" {
		return nil
	}
	return []multifield{{Value: value, ValueType: "WORK"}}
}

// title is the lead's TITLE: the entity type and name, or, without a name,
// what was asked for. Phone and email stay out of it: titles show up in
// lists, notifications and the activity stream.
func title(l crm.Lead) string {
	label := crm.EntityLabel(l.EntityType)
	var t string
	switch name := strings.TrimSpace(l.Name); {
	case name != "" && label != "":
		t = label + ": " + name
	case name != "":
		t = name
	default:
		t = "Заявка на подключение"
		if label != "" {
			t += " (" + label + ")"
		}
		if len(l.Products) > 0 {
			t += ": " + strings.Join(l.Products, ", ")
		}
	}
	if utf8.RuneCountInString(t) <= maxTitle {
		return t
	}
	return string([]rune(t)[:maxTitle-1]) + "…"
}

// comments is COMMENTS: what the salesperson needs beyond the contact
// fields, one item a line. Bitrix24 renders COMMENTS as HTML, so every piece
// of the lead is escaped and lines are joined with <br>.
func comments(l crm.Lead) string {
	var lines []string
	add := func(label, value string) {
		if value != "" {
			lines = append(lines, html.EscapeString(label+": "+value))
		}
	}
	if l.Message != "" {
		lines = append(lines, "Сообщение:")
		msg := strings.ReplaceAll(l.Message, "\r\n", "\n")
		for line := range strings.SplitSeq(msg, "\n") {
			lines = append(lines, html.EscapeString(line))
		}
	}
	add("Продукты", strings.Join(l.Products, ", "))
	add("БИН/ИИН", l.TaxID)
	add("Язык ответа", l.Lang)
	c := l.Consent
	add("Согласие", fmt.Sprintf("обработка ПДн: %s, рассылка: %s; политика версии %s (%s), дано %s",
		yesNo(c.Processing), yesNo(c.Marketing), c.PolicyVersion, c.PolicyURL, c.GivenAt.UTC().Format(time.RFC3339)))
	risk := strconv.Itoa(l.Risk.Score) + "/100"
	if len(l.Risk.Signals) > 0 {
		risk += " (" + strings.Join(l.Risk.Signals, ", ") + ")"
	}
	add("Риск", risk)
	add("Заявка leadgate", l.ID)
	return strings.Join(lines, "<br>")
}

func yesNo(b bool) string {
	if b {
		return "да"
	}
	return "нет"
}
