// Package sendgrid sends mail.Message values through SendGrid's v3 Mail Send
// API (POST {host}/v3/mail/send), one request per Message, and verifies and
// parses what SendGrid's Event Webhook posts back (events.go).
//
// The Mail Send request is sendgrid-go's: sendgrid.GetRequest gives the URL
// and headers (Authorization: Bearer <key>), helpers/mail's SGMailV3 is the
// body, and rest.BuildRequestObject turns them into an *http.Request. The
// call itself is made with the *http.Client given to New rather than with
// sendgrid.MakeRequestWithContext, because that one goes through the
// package-level rest.DefaultClient, an http.Client without any timeout, and
// reads the whole answer into memory however long it is.
//
// Send's failures are *integrations.Error values with System "sendgrid" and
// Op "mail.send"; the API key is never part of one.
package sendgrid

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sendgrid/rest"
	sg "github.com/sendgrid/sendgrid-go"
	sgmail "github.com/sendgrid/sendgrid-go/helpers/mail"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/mail"
)

// System is the name this client gives its errors.
const System = "sendgrid"

// DefaultAPIHost is the API New uses when given no host; EU data residency
// uses https://api.eu.sendgrid.com instead.
const DefaultAPIHost = "https://api.sendgrid.com"

// op names the one call this client makes, in its errors.
const op = "mail.send"

// endpoint is the Mail Send path under the API host.
const endpoint = "/v3/mail/send"

// maxAnswer bounds how much of an answer is read: a Mail Send answer is
// empty (202) or a short errors array.
const maxAnswer = 64 << 10

// maxField bounds the errors[].field value that may go into an error's Code.
const maxField = 100

// Client sends mail through one SendGrid account. It is safe for concurrent
// use.
type Client struct {
	key    string // never logged, never in an error
	host   string
	client *http.Client
	now    func() time.Time // the clock X-RateLimit-Reset is read against
}

var _ mail.Mailer = (*Client)(nil)

// New returns a Client that authenticates with apiKey and posts to apiHost
// (DefaultAPIHost when empty; otherwise an absolute http or https URL with
// no path, query or fragment: an EU host, a local fake). A nil client means
// integrations.NewHTTPClient(0), so every call has a timeout; redirects are
// never followed, whatever client is given (integrations.NoRedirects).
//
// Errors never quote the key.
func New(apiKey, apiHost string, client *http.Client) (*Client, error) {
	if !validKey(apiKey) {
		return nil, errors.New("sendgrid: API key must be non-empty printable ASCII without spaces")
	}
	if apiHost == "" {
		apiHost = DefaultAPIHost
	}
	u, err := url.Parse(apiHost)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("sendgrid: API host must be an absolute http or https URL without path or query")
	}
	client = integrations.NoRedirects(client)
	return &Client{key: apiKey, host: u.Scheme + "://" + u.Host, client: client, now: time.Now}, nil
}

// validKey reports whether k can go into an Authorization header as it is.
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// Build returns the v3 Mail Send body for m, after m.Validate:
//
//   - one personalization per recipient, with that recipient's
//     PerRecipient headers and substitutions, so nobody sees anyone
//     else's address;
//   - from, subject, and content with text/plain first, then text/html
//     (the order SendGrid requires), leaving out an empty one;
//   - headers, categories [Category], custom_args {"ref": Ref} and
//     asm {"group_id": ASMGroupID} when set;
//   - tracking_settings.click_tracking off for HTML and text: links carry
//     signed tokens, and rewriting them through SendGrid's redirector would
//     break one-click unsubscribe.
//
// Addresses go with their domain in A-label form (mail.ASCIIAddress), the
// form whose length the mailable rule judged. A recipient's display name
// containing ',' or ';' is left out: SendGrid accepts such a name and then
// drops the message, taking part of the name for the address.
func Build(m mail.Message) (*sgmail.SGMailV3, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	// Validate passed, so both conversions succeed.
	from, _ := mail.ASCIIAddress(m.From.Email)
	b := &sgmail.SGMailV3{
		From:             sgmail.NewEmail(m.From.Name, from),
		Subject:          m.Subject,
		Personalizations: make([]*sgmail.Personalization, len(m.To)),
		Headers:          m.Headers,
		TrackingSettings: &sgmail.TrackingSettings{
			ClickTracking: sgmail.NewClickTrackingSetting().SetEnable(false).SetEnableText(false),
		},
	}
	for i, to := range m.To {
		name := to.Name
		if strings.ContainsAny(name, ",;") {
			name = ""
		}
		addr, _ := mail.ASCIIAddress(to.Email)
		p := &sgmail.Personalization{To: []*sgmail.Email{sgmail.NewEmail(name, addr)}}
		if len(m.PerRecipient) != 0 {
			p.Headers = m.PerRecipient[i].Headers
			p.Substitutions = m.PerRecipient[i].Substitutions
		}
		b.Personalizations[i] = p
	}
	if m.Text != "" {
		b.AddContent(sgmail.NewContent("text/plain", m.Text))
	}
	if m.HTML != "" {
		b.AddContent(sgmail.NewContent("text/html", m.HTML))
	}
	if m.Category != "" {
		b.AddCategories(m.Category)
	}
	if m.Ref != "" {
		b.CustomArgs = map[string]string{"ref": m.Ref}
	}
	if m.ASMGroupID != 0 {
		b.SetASM(sgmail.NewASM().SetGroupID(m.ASMGroupID))
	}
	return b, nil
}

// Send posts m to SendGrid; any 2xx (202 Accepted, 200 in sandbox mode) is
// success. Failures follow package integrations:
//
//   - an invalid Message is Permanent, Code "invalid message: …", and no
//     request is made;
//   - 429 is RateLimited, RetryAfter the time left until X-RateLimit-Reset
//     (a Unix time), or until Retry-After when that header is missing;
//   - network errors, timeouts, 408 and 5xx are Temporary (a 503 with
//     Retry-After RateLimited);
//   - any other 4xx is Permanent, with Code the first errors[].field of
//     the answer that is a plain field name ("from.email",
//     "personalizations.0.to"), never its message; a 400 whose field is a
//     recipient's ("personalizations.3.to.0.email") is wrapped in a
//     *mail.RecipientError naming that recipient, so the caller can send
//     the others without them.
func (c *Client) Send(ctx context.Context, m mail.Message) error {
	body, err := Build(m)
	if err != nil {
		return &integrations.Error{System: System, Op: op, Code: err.Error(), Kind: integrations.Permanent, Err: err}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return &integrations.Error{System: System, Op: op, Code: "unencodable message", Kind: integrations.Permanent, Err: err}
	}
	// One request object per send: rest.Request carries a headers map, so
	// sharing one between concurrent sends would race.
	r := sg.GetRequest(c.key, endpoint, c.host)
	r.Method = rest.Post
	r.Body = raw
	req, err := rest.BuildRequestObject(r)
	if err != nil {
		// The host was checked in New, so this cannot happen; the cause
		// is left out all the same, since net/http quotes the URL.
		return &integrations.Error{System: System, Op: op, Code: "invalid request", Kind: integrations.Permanent}
	}
	resp, err := c.client.Do(req.WithContext(ctx))
	if err != nil {
		return integrations.Transport(System, op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	return c.failure(resp, answer)
}

// failure classifies an answer: nil for a 2xx, else an *integrations.Error
// with SendGrid's rate-limit reset and error field read in.
func (c *Client) failure(resp *http.Response, answer []byte) error {
	err := integrations.Check(System, op, resp)
	e, ok := errors.AsType[*integrations.Error](err)
	if !ok {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if reset, ok := parseReset(resp.Header.Get("X-RateLimit-Reset")); ok {
			e.RetryAfter = max(reset.Sub(c.now()), 0)
		}
	case e.Kind == integrations.Permanent:
		e.Code = errorField(answer)
		if i, ok := recipientIndex(e.Code); ok && resp.StatusCode == http.StatusBadRequest {
			return &mail.RecipientError{Index: i, Err: e}
		}
	}
	return e
}

// recipientIndex reads the recipient a Mail Send error field blames:
// "personalizations.<i>.to…" is about personalization i, which Build made
// for To[i] alone. Other fields (a header, the content, the sender) are
// about every recipient alike.
func recipientIndex(field string) (int, bool) {
	field = strings.NewReplacer("[", ".", "]", "").Replace(field) // "personalizations[3].to" is the same field
	rest, ok := strings.CutPrefix(field, "personalizations.")
	if !ok {
		return 0, false
	}
	digits, rest, _ := strings.Cut(rest, ".")
	if rest != "to" && !strings.HasPrefix(rest, "to.") {
		return 0, false
	}
	i, err := strconv.Atoi(digits)
	if err != nil || i < 0 || strconv.Itoa(i) != digits {
		return 0, false
	}
	return i, true
}

// parseReset reads X-RateLimit-Reset, the Unix time in seconds at which
// SendGrid's rate-limit window starts again.
func parseReset(v string) (time.Time, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// errorField returns the first errors[].field of a Mail Send error answer
// ({"errors":[{"message":…,"field":…,"help":…}]}) that is a plain field
// name, or "". The message is never used: it may quote what was sent.
func errorField(answer []byte) string {
	var a struct {
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return ""
	}
	for _, e := range a.Errors {
		if plainField(e.Field) {
			return e.Field
		}
	}
	return ""
}

// plainField reports whether f looks like a JSON path into the request
// ("personalizations.0.to.0.email", "content[0].value"): ASCII letters,
// digits, '.', '_', '-', '[' and ']', short.
func plainField(f string) bool {
	if f == "" || len(f) > maxField {
		return false
	}
	for _, c := range []byte(f) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}
