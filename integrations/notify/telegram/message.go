package telegram

import (
	"html"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/paymtech/leadgate/integrations/crm"
)

// Message is the notification for a lead that was routed to sales, in
// Russian (the sales team's language) and Telegram HTML:
//
//	<b>Новая заявка</b> · Юрлицо
//	Имя: Test Testov
//	Продукты: acquiring, payment_links
//	Ответственный: SMB / Test Managerov
//	Риск: 40/100 (disposable_email)
//	Телефон: +77010000000
//	Email: test@example.com
//	<a href="https://crm.example.com/lead/1">Открыть в CRM</a>
//
// Lines without a value are left out; the risk line appears only for a
// score above 0; phone and email only when includeContacts
// (TELEGRAM_INCLUDE_CONTACTS), since a chat is read more widely than the CRM.
// Without a usable http(s) link in r.URL, the CRM's reference r.Ref is shown
// instead. The free-text message is never included: it is in the CRM, and it
// is where people put what should not be in a group chat.
//
// Every value is HTML-escaped and clipped to its own budget, so the result
// is at most 1000 characters whatever the lead holds, far below Telegram's
// 4096.
func Message(l crm.Lead, r crm.Receipt, includeContacts bool) string {
	var b strings.Builder
	b.WriteString("<b>Новая заявка</b>")
	if t := entityType(l.EntityType); t != "" {
		b.WriteString(" · ")
		b.WriteString(t)
	}
	line(&b, "Имя", clip(l.Name, 120))
	line(&b, "Продукты", clip(strings.Join(l.Products, ", "), 120))
	if a := l.Assignment; a != nil {
		team, owner := clip(a.Team, 60), clip(a.Owner, 60)
		if team != "" && owner != "" {
			team += " / "
		}
		line(&b, "Ответственный", team+owner)
	}
	if l.Risk.Score > 0 {
		risk := strconv.Itoa(min(l.Risk.Score, 100)) + "/100"
		if s := clip(strings.Join(l.Risk.Signals, ", "), 100); s != "" {
			risk += " (" + s + ")"
		}
		line(&b, "Риск", risk)
	}
	if includeContacts {
		line(&b, "Телефон", clip(l.Phone, 30))
		line(&b, "Email", clip(l.Email, 100))
	}
	if href, ok := link(r.URL); ok {
		b.WriteString("\n<a href=\"")
		b.WriteString(href)
		b.WriteString("\">Открыть в CRM</a>")
	} else if ref := clip(r.Ref, 60); ref != "" {
		line(&b, "В CRM", "<code>"+ref+"</code>")
	}
	return b.String()
}

// entityType names the kind of business the way sales says it, or shows
// an unknown one as it is.
func entityType(t string) string {
	if label := crm.EntityLabel(t); label != "" {
		return label
	}
	return clip(t, 20)
}

// line adds "\nlabel: value" to b, or nothing when value is empty. value
// must already be escaped.
func line(b *strings.Builder, label, value string) {
	if value == "" {
		return
	}
	b.WriteByte('\n')
	b.WriteString(label)
	b.WriteString(": ")
	b.WriteString(value)
}

// link returns u escaped for an href, and whether it is usable: an absolute
// http or https URL (Telegram refuses a message whose link it cannot open,
// and a javascript: link has no business in a sales chat) short enough for
// the message's budget. A clipped URL would lead nowhere, so a longer one is
// not used at all.
func link(u string) (string, bool) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", false
	}
	href := html.EscapeString(u)
	return href, utf8.RuneCountInString(href) <= 250
}

// clip returns s with its runs of white space (newlines included) folded
// into single spaces, HTML-escaped, and cut to at most limit characters of
// escaped text, the last of them "…" when something was cut. It never cuts an
// entity such as &amp; in half, which would make Telegram refuse the whole
// message.
func clip(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	escaped := html.EscapeString(s)
	if utf8.RuneCountInString(escaped) <= limit {
		return escaped
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		e := html.EscapeString(string(r))
		w := utf8.RuneCountInString(e)
		if n+w > limit-1 {
			break
		}
		b.WriteString(e)
		n += w
	}
	return strings.TrimRight(b.String(), " ") + "…"
}
