package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/templates"
)

// The admin's breach-notice pages: notices listed with their progress,
// composed per language for everyone held or for a list of addresses,
// confirmed, sent, and followed to done with why mail failed. The checks
// and the sending are the admin API's (POST /v1/admin/breach-notices,
// handed in as CampaignDeps.Notice and Start), so a notice sent here is
// the one the API would send. Addresses are only ever posted: a notice's
// page is named by its id.

// NoticeForm is a breach notice's form as posted: Message holds only the
// languages filled in, as the API's request does.
type NoticeForm struct {
	All     bool
	Emails  []string
	Message map[string]string
}

// noticeMessage is one language's message of the form.
type noticeMessage struct {
	Lang, Label, Text, Err string
}

// noticeFormData is the compose page's content, and its confirmation step
// (Confirm): the same form, shown as it will be sent, with its fields
// hidden for the post that sends it.
type noticeFormData struct {
	Messages   []noticeMessage
	All        bool
	Emails     string // the list as typed
	Count      int    // addresses in the list
	EmailsErr  string
	MessageErr string
	Problem    string
	Confirm    bool
}

// noticeRow is a breach notice as the list shows it.
type noticeRow struct {
	campaignRow
	Audience string
}

// noticesData is the list page's content.
type noticesData struct{ Rows []noticeRow }

// failureRow is one person a notice did not reach: their requests (lead
// ids) and why; never an address.
type failureRow struct {
	Leads  []option // Value: the lead's page, Label: its id
	Reason string
}

// noticeData is a notice's page.
type noticeData struct {
	ID           string
	Row          noticeRow
	By, Finished string
	Reasons      []option // Value: the count, Label: why
	Failures     []failureRow
	MoreFailures bool
}

// noticeFailuresShown is how many unreached people a notice's page lists;
// GET /v1/admin/breach-notices/{id}/failures pages through all of them.
const noticeFailuresShown = 100

func (c *Console) noticeRow(lang templates.Lang, cp *intake.Campaign) noticeRow {
	row := noticeRow{campaignRow: c.campaignRow(lang, cp), Audience: msg(lang, "console.admin.notice.audience_all")}
	row.Href = "/admin/breach-notices/" + cp.ID + "?lang=" + string(lang)
	row.Name = msg(lang, "console.admin.notice.name", row.Created)
	if !cp.All {
		row.Audience = msg(lang, "console.admin.notice.audience_list")
	}
	return row
}

// BreachNotices answers GET /admin/breach-notices: the newest notices with
// their progress.
func (c *Console) BreachNotices(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	list, err := c.Campaigns.Campaigns(r.Context(), intake.KindBreachNotice, campaignsListed)
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	var data noticesData
	for _, cp := range list {
		data.Rows = append(data.Rows, c.noticeRow(lang, cp))
	}
	c.render(w, r, ss, http.StatusOK, "notices", "breach_notices", nil, "", data)
}

// BreachNotice answers GET /admin/breach-notices/{id}: a notice's
// progress, why mail failed, and who it did not reach (by their requests).
// ?done=queued says it was just sent.
func (c *Console) BreachNotice(w http.ResponseWriter, r *http.Request) {
	ss, lang, id := session(r), c.lang(r), r.PathValue("id")
	cp, err := c.Campaigns.Campaign(r.Context(), id)
	if err == nil && cp.Kind != intake.KindBreachNotice {
		err = &intake.Error{Code: intake.ENotFound, Message: "no such breach notice"}
	}
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	failed, next, err := c.Campaigns.Failures(r.Context(), id, "", noticeFailuresShown)
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	d := noticeData{ID: id, Row: c.noticeRow(lang, cp), By: cp.By, Finished: when(cp.FinishedAt), MoreFailures: next != ""}
	for _, reason := range sortedReasons(cp.FailedReasons) {
		d.Reasons = append(d.Reasons, option{Value: fmt.Sprint(cp.FailedReasons[reason]),
			Label: msg(lang, "console.campaign.reason."+string(reason))})
	}
	for _, f := range failed {
		row := failureRow{Reason: msg(lang, "console.campaign.reason."+string(f.Reason))}
		for _, l := range f.Leads {
			row.Leads = append(row.Leads, option{Value: "/admin/leads/" + l + "?lang=" + string(lang), Label: l})
		}
		d.Failures = append(d.Failures, row)
	}
	var notice string
	if r.URL.Query().Get("done") == "queued" {
		notice = msg(lang, "console.admin.notice.queued")
	}
	c.render(w, r, ss, http.StatusOK, "notice", "breach_notices", nil, notice, d)
}

// NewBreachNotice answers GET /admin/breach-notices/new: an empty form.
func (c *Console) NewBreachNotice(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, session(r), http.StatusOK, "notice_new", "breach_notices", nil, "",
		noticeFormOf(c.lang(r), NoticeForm{All: true}, ""))
}

// splitAddresses reads the list of addresses as typed: one or more a line,
// separated by commas, semicolons or spaces, as a list pasted from a
// spreadsheet or a mail client comes.
func splitAddresses(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) })
}

// readNoticeForm reads the posted form, and the list of addresses as typed.
func readNoticeForm(r *http.Request) (NoticeForm, string) {
	pf := r.PostForm
	f := NoticeForm{All: pf.Get("audience") != "list", Message: map[string]string{}}
	typed := pf.Get("emails")
	if !f.All {
		f.Emails = splitAddresses(typed)
	}
	for _, l := range contentLangs {
		// A language left blank is not part of the notice: its readers
		// get another language's message (intake.ContentLang).
		if v := pf.Get("message_" + string(l)); strings.TrimSpace(v) != "" {
			f.Message[string(l)] = v
		}
	}
	return f, typed
}

// noticeFormOf fills the form's page from f and the list as typed.
func noticeFormOf(lang templates.Lang, f NoticeForm, typed string) noticeFormData {
	d := noticeFormData{All: f.All, Emails: typed, Count: len(f.Emails)}
	for _, l := range contentLangs {
		d.Messages = append(d.Messages, noticeMessage{Lang: string(l), Label: msg(lang, "console.campaign.lang_"+string(l)),
			Text: f.Message[string(l)]})
	}
	return d
}

// problem puts the API's refusal beside its field: a list without
// addresses, an entry that is not an address (named as typed: this page is
// the admin's own), or no message.
func (d *noticeFormData) problem(lang templates.Lang, ie *intake.Error, f NoticeForm) {
	field, detail, _ := strings.Cut(ie.Message, ": ")
	index, isEntry := strings.CutPrefix(field, "emails[")
	i, err := strconv.Atoi(strings.TrimSuffix(index, "]"))
	switch {
	case isEntry && err == nil && i >= 0 && i < len(f.Emails):
		d.EmailsErr = msg(lang, "console.admin.notice.bad_address", f.Emails[i])
	case field == "emails" && strings.HasPrefix(detail, "at most"):
		d.EmailsErr = msg(lang, "console.admin.notice.too_many")
	case field == "emails":
		d.EmailsErr = msg(lang, "console.admin.notice.no_addresses")
	default: // message: no language filled in
		d.MessageErr = msg(lang, "console.admin.notice.no_message")
	}
	d.Problem = d.EmailsErr + d.MessageErr
}

// CreateBreachNotice answers POST /admin/breach-notices. The button
// pressed says what to do: "review" shows the notice as it will be sent,
// with a button to send it and one to edit it; "edit" the form again;
// "send" sends it and answers 303 to its page. A form the API's checks
// refuse comes back with the problem beside its field (422).
func (c *Console) CreateBreachNotice(w http.ResponseWriter, r *http.Request) {
	ss, lang := session(r), c.lang(r)
	f, typed := readNoticeForm(r)
	cp, to, err := c.Notice(f)
	var ie *intake.Error
	if err != nil && !(errors.As(err, &ie) && ie.Code == intake.EInvalid) {
		c.storeError(w, r, ss, err)
		return
	}
	d := noticeFormOf(lang, f, typed)
	action := r.PostForm.Get("action")
	switch {
	case err != nil:
		d.problem(lang, ie, f)
		c.render(w, r, ss, http.StatusUnprocessableEntity, "notice_new", "breach_notices", nil, "", d)
		return
	case action != "send":
		d.Confirm = action == "review"
		c.render(w, r, ss, http.StatusOK, "notice_new", "breach_notices", nil, "", d)
		return
	}
	cp.By = ss.Name
	id, err := c.Start(r.Context(), cp, to)
	if id != "" {
		auditTarget(r, id)
	}
	if err != nil {
		c.storeError(w, r, ss, err)
		return
	}
	c.Log.Info("breach notice queued from the console", "campaign", id, "all", cp.All, "by", ss.Name)
	http.Redirect(w, r, "/admin/breach-notices/"+id+"?"+url.Values{"lang": {string(lang)}, "done": {"queued"}}.Encode(), http.StatusSeeOther)
}
