package amocrm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// defaultRateLimitWait is how long to wait after a 429 that does not say:
// amoCRM counts requests per second.
const defaultRateLimitWait = time.Second

// amoCRM blocks the API of an integration that kept exceeding the rate
// limit: every request then gets 403 until the block is lifted
// (https://www.amocrm.ru/developers/content/api/recommendations). A 403 is
// otherwise a refusal for good (a user without rights, a disabled
// integration), so only a 403 that comes within blockWindow of a 429 is
// taken for the block: RateLimited, retried after blockWait without using
// up retries. amoCRM does not say how long a block lasts; the window is
// not renewed by the 403s themselves, so a genuine refusal that happens to
// follow a 429 is not retried for more than blockWindow.
const (
	blockWindow = 10 * time.Minute
	blockWait   = time.Minute
)

// codeBlocked is the Code of a 403 taken for amoCRM's block after 429s.
const codeBlocked = "blocked after 429"

// maxBody bounds how much of an answer is read.
const maxBody = 4 << 20

// call sends one API request: in, when not nil, as the JSON body, and the
// JSON answer decoded into out, when not nil. It reports false with no error
// for 204 No Content, amoCRM's "nothing matched". Every failure is an
// *integrations.Error whose message holds no URL, token or body.
func (c *Client) call(ctx context.Context, op, method, path string, query url.Values, in, out any) (bool, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return false, &integrations.Error{System: System, Op: op, Code: "unencodable request", Kind: integrations.Permanent}
		}
		body = bytes.NewReader(b)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		// The base URL parsed in New, so only a nil context gets here.
		return false, &integrations.Error{System: System, Op: op, Code: "invalid request", Kind: integrations.Permanent}
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			// Nothing was sent. When the limiter itself fails the call is
			// not made either: without it the workers could exceed the
			// limit together and get the account blocked.
			code := "rate limiter"
			if ctx.Err() != nil {
				code = "rate limit wait ended"
			}
			return false, &integrations.Error{System: System, Op: op, Code: code, Kind: integrations.Temporary, Err: err}
		}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "leadgate")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.client.Do(req)
	if err != nil {
		return false, integrations.Transport(System, op, err)
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if err := integrations.Check(System, op, resp); err != nil {
		return false, c.refine(err, resp)
	}
	if resp.StatusCode == http.StatusNoContent {
		return false, nil
	}
	if out != nil {
		decoded, err := integrations.ReadAnswer(ctx, System, op, resp.Body, maxBody, out)
		if err != nil {
			return false, err
		}
		if !decoded {
			return false, &integrations.Error{System: System, Op: op, Status: resp.StatusCode, Code: "unreadable response", Kind: integrations.Temporary}
		}
	}
	return true, nil
}

// refine adds what amoCRM's answer says to Check's error: a default wait for
// a 429 without Retry-After, the block that a 403 soon after a 429 means,
// and the validation code of a 400. It remembers when the last 429 came.
func (c *Client) refine(err error, resp *http.Response) error {
	e, ok := errors.AsType[*integrations.Error](err)
	if !ok {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		c.last429.Store(c.now().UnixNano())
		if e.RetryAfter == 0 {
			e.RetryAfter = defaultRateLimitWait
		}
	case resp.StatusCode == http.StatusForbidden && c.blockedAfter429():
		e.Kind = integrations.RateLimited
		e.Code = codeBlocked
		e.RetryAfter = max(e.RetryAfter, blockWait)
	case e.Kind == integrations.RateLimited && e.RetryAfter == 0:
		e.RetryAfter = defaultRateLimitWait
	case resp.StatusCode == http.StatusBadRequest:
		e.Code = problemCode(resp.Body)
	}
	return e
}

// blockedAfter429 reports whether amoCRM answered 429 within the last
// blockWindow. It is per Client, so per process: a worker that never got a
// 429 itself takes a 403 for a refusal. With the shared Limiter keeping
// every worker under the limit, 429s (and so blocks) should not happen at
// all; this is the fallback for when they do.
func (c *Client) blockedAfter429() bool {
	at := c.last429.Load()
	return at != 0 && c.now().Sub(time.Unix(0, at)) <= blockWindow
}

// problem is amoCRM's error answer (application/problem+json); a 400 lists
// what failed validation. Only the codes and title are read: "detail" may
// echo the values that were sent.
type problem struct {
	Title            string `json:"title"`
	ValidationErrors []struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	} `json:"validation-errors"`
}

// problemCode is the first validation code of a 400 answer ("NotSupportedChoice"),
// else its title, else "" — whichever looks like a fixed word rather than
// data.
func problemCode(body io.Reader) string {
	var p problem
	if json.NewDecoder(io.LimitReader(body, maxBody)).Decode(&p) != nil {
		return ""
	}
	for _, ve := range p.ValidationErrors {
		for _, e := range ve.Errors {
			if isCodeWord(e.Code) {
				return e.Code
			}
		}
	}
	if isCodeWord(p.Title) {
		return p.Title
	}
	return ""
}

// isCodeWord reports whether s is short and made only of ASCII letters,
// digits, spaces, '_', '-' and '.': a vendor code or title, not an echoed
// phone, email or name with its '+' or '@' — or Cyrillic.
func isCodeWord(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == ' ', r == '_', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}

// customField is one custom field value of a lead or contact, as sent and as
// returned. A field is named by FieldID or, for the predefined PHONE and
// EMAIL of contacts, by FieldCode.
type customField struct {
	FieldID   int          `json:"field_id,omitempty"`
	FieldCode string       `json:"field_code,omitempty"`
	Values    []fieldValue `json:"values"`
}

// fieldValue is one value of a custom field. Value is a string for text,
// phone and email fields; other field types return numbers or objects.
type fieldValue struct {
	Value    any    `json:"value"`
	EnumCode string `json:"enum_code,omitempty"`
}

// complexLead is one lead of POST /api/v4/leads/complex.
type complexLead struct {
	Name               string          `json:"name"`
	PipelineID         int             `json:"pipeline_id,omitempty"`
	ResponsibleUserID  int             `json:"responsible_user_id,omitempty"`
	CustomFieldsValues []customField   `json:"custom_fields_values"`
	Embedded           complexEmbedded `json:"_embedded"`
}

// complexEmbedded is what is created along with a complex lead: at most one
// contact and one company.
type complexEmbedded struct {
	Tags      []tag     `json:"tags"`
	Contacts  []contact `json:"contacts"`
	Companies []company `json:"companies,omitempty"`
}

// tag is a lead tag, created by name when new.
type tag struct {
	Name string `json:"name"`
}

// contact is a contact to create or the fields of one to overwrite.
type contact struct {
	Name               string        `json:"name,omitempty"`
	CustomFieldsValues []customField `json:"custom_fields_values,omitempty"`
}

// company is a company to create or rename.
type company struct {
	Name string `json:"name"`
}

// leadPatch is the body of PATCH /api/v4/leads/{id}.
type leadPatch struct {
	Name string `json:"name"`
}

// complexResult is one element of the complex method's answer; it also
// names the contact and company, which this driver finds through the lead.
type complexResult struct {
	ID int `json:"id"`
	// Merged is true when amoCRM's duplicate control found the lead to be
	// a repeat of one it holds and merged it into that one: ID is then the
	// existing lead's (https://developers.kommo.com/reference/complex-leads).
	Merged bool `json:"merged"`
}

// nextLink is the "_links" of a list page: "next" is present when there is
// another page.
type nextLink struct {
	Next *struct{} `json:"next"`
}

// leadsPage is one page of GET /api/v4/leads.
type leadsPage struct {
	Links    nextLink `json:"_links"`
	Embedded struct {
		Leads []lead `json:"leads"`
	} `json:"_embedded"`
}

// lead is the part of a lead model this driver reads.
type lead struct {
	ID                 int           `json:"id"`
	CreatedAt          int64         `json:"created_at"` // Unix seconds
	CustomFieldsValues []customField `json:"custom_fields_values"`
	Embedded           struct {
		Contacts []struct {
			ID     int  `json:"id"`
			IsMain bool `json:"is_main"`
		} `json:"contacts"`
		Companies []struct {
			ID int `json:"id"`
		} `json:"companies"`
	} `json:"_embedded"`
}

// holds reports whether custom field fieldID of the lead has the value want,
// exactly.
func (ld lead) holds(fieldID int, want string) bool {
	for _, f := range ld.CustomFieldsValues {
		if f.FieldID != fieldID {
			continue
		}
		for _, v := range f.Values {
			if s, ok := v.Value.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// predates reports whether the lead was created before request l was
// received, so it cannot be one leadgate created for l: it is one amoCRM
// merged l into. Clock skew between leadgate and amoCRM makes the test
// err one of two ways: a lead leadgate created may look older, and is then
// left alone like a merged one (the safe side); or a lead created within
// the skew before the request may look newer, and only the merged note
// then tells it apart.
func (ld lead) predates(l crm.Lead) bool {
	return ld.CreatedAt > 0 && !l.ReceivedAt.IsZero() && ld.CreatedAt < l.ReceivedAt.Unix()
}

// mainContact is the id of the lead's main contact, else of its first, else 0.
func (ld lead) mainContact() int {
	for _, ct := range ld.Embedded.Contacts {
		if ct.IsMain {
			return ct.ID
		}
	}
	if len(ld.Embedded.Contacts) > 0 {
		return ld.Embedded.Contacts[0].ID
	}
	return 0
}

// noteTypeCommon is amoCRM's plain text note.
const noteTypeCommon = "common"

// note is a note to add or the new content of one.
type note struct {
	NoteType string     `json:"note_type"`
	Params   noteParams `json:"params"`
}

// noteParams holds a text note's text.
type noteParams struct {
	Text string `json:"text"`
}

// notesPage is one page of GET /api/v4/leads/{id}/notes.
type notesPage struct {
	Embedded struct {
		Notes []struct {
			ID       int        `json:"id"`
			NoteType string     `json:"note_type"`
			Params   noteParams `json:"params"`
		} `json:"notes"`
	} `json:"_embedded"`
}
