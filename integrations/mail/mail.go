// Package mail is what every email driver (sendgrid, file) is given: a
// Message for one or more recipients, each of whom receives it alone.
//
// A Message's headers are built only from values the code controls (a
// signed unsubscribe URL, a fixed category word), never from raw user text;
// Validate enforces it at the last moment, so that no line break can reach a
// header whatever a caller got wrong: a Message that fails Validate is
// refused before anything is sent or written.
//
// What makes an address and a display name mailable is decided once, here
// (CheckAddress, CheckName in address.go), with the standard library and
// golang.org/x/net/idna only, so that intake/form can refuse at the door what
// a driver would refuse at the last moment.
package mail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxRecipients is the most recipients one Message may have: SendGrid takes
// at most 1000 personalizations in one request, and each recipient is one.
const MaxRecipients = 1000

// Limits that keep every header line within RFC 5322's 998 octets once a
// driver has encoded it, and refuse what is certainly a mistake. Addresses
// and display names follow CheckAddress and CheckName (address.go).
const (
	maxSubjectRune = 255
	maxHeaderLine  = 998 // name, ": " and value
	maxTokenLen    = 128 // Ref
	maxCategoryLen = 255 // SendGrid's limit on a category
)

// Message is one email. Every recipient gets their own copy and never sees
// the others.
type Message struct {
	From    Address   // MAIL_FROM / MAIL_FROM_NAME
	To      []Address // one to MaxRecipients
	Subject string    // one line, at most 255 characters
	Text    string    // the text/plain body; Text, HTML or both
	HTML    string    // the text/html body
	// Headers go to every recipient, e.g. List-Unsubscribe-Post. Names are
	// RFC 5322 field names other than the ones the drivers write themselves
	// (From, To, Subject, Content-Type …); values are printable ASCII.
	Headers map[string]string
	// PerRecipient, when not empty, has one entry per recipient (same
	// index as To) whose headers are added to that recipient's copy only,
	// replacing a header of the same name in Headers: e.g. each person's
	// own List-Unsubscribe URL.
	PerRecipient []Personal
	Category     string // a fixed word such as "ack", "optin", "campaign", "sales"; never personal data
	ASMGroupID   int    // SendGrid unsubscribe group for marketing mail; 0 for none
	Ref          string // our opaque id of the send (letters, digits, '-', '_'); never personal data
}

// Address is a mailbox: a plain address ("test@example.com", no angle
// brackets or comments) and an optional display name.
type Address struct{ Email, Name string }

// Personal is what one recipient's copy has of its own.
type Personal struct {
	Headers map[string]string
	// Substitutions replace text in this recipient's subject and bodies,
	// key by value (SendGrid "substitutions"): one rendering of a campaign
	// serves all its recipients, each with their own unsubscribe token.
	// Keys are plain tokens ('-', '_', letters, digits) of at least 8
	// characters, so they cannot occur by chance; values printable ASCII.
	Substitutions map[string]string
}

// Mailer sends a Message; implemented by sendgrid.Client and file.Driver.
type Mailer interface {
	// Send delivers m to each of m.To separately. A failure is (or wraps)
	// an *integrations.Error, classified by the rule of package
	// integrations; a Message that fails Validate is a Permanent one whose
	// chain holds ErrInvalid, and a permanent refusal the provider blamed
	// on one recipient holds a *RecipientError.
	Send(ctx context.Context, m Message) error
}

// RecipientError is a provider's permanent refusal of a whole Message that
// it blamed on one recipient, To[Index] (SendGrid's 400 naming
// "personalizations.3.to.0.email"). The provider took none of the message,
// so the caller may send it again to the others without that one. Err is
// the driver's error: its chain holds the *integrations.Error.
type RecipientError struct {
	Index int
	Err   error
}

// Error names the recipient by index only.
func (e *RecipientError) Error() string {
	return fmt.Sprintf("recipient %d refused: %v", e.Index, e.Err)
}

// Unwrap gives errors.As the driver's error, and so its Kind.
func (e *RecipientError) Unwrap() error { return e.Err }

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid message")

// invalid builds Validate's errors. reason is always a fixed phrase, never
// the offending value, since that may be someone's address or name.
func invalid(reason string) error {
	return fmt.Errorf("%w: %s", ErrInvalid, reason)
}

// invalidBecause builds Validate's error for an address or name that
// breaks the mailable rule: both ErrInvalid and the rule's own error are in
// its chain (errors.Is finds ErrLabelTooLong, say), and neither quotes the
// value.
func invalidBecause(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrInvalid, what, err)
}

// reserved are header names the drivers write themselves, or that SendGrid
// refuses in "headers"; a caller setting one would forge or break the
// message. Keys are lower case.
var reserved = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "reply-to": true, "sender": true,
	"subject": true, "date": true, "message-id": true, "return-path": true,
	"mime-version": true, "content-type": true, "content-transfer-encoding": true,
	"received": true, "dkim-signature": true, "x-sg-id": true, "x-sg-eid": true,
}

// Validate reports whether m can be sent as it is. Its error names which
// rule was broken, never the value that broke it, so it is safe to log.
func (m Message) Validate() error {
	if err := CheckAddress(m.From.Email); err != nil {
		return invalidBecause("sender address", err)
	}
	if err := CheckName(m.From.Name); err != nil {
		return invalidBecause("sender name", err)
	}
	switch {
	case len(m.To) == 0:
		return invalid("no recipients")
	case len(m.To) > MaxRecipients:
		return invalid("more than 1000 recipients")
	}
	for _, to := range m.To {
		if err := CheckAddress(to.Email); err != nil {
			return invalidBecause("recipient address", err)
		}
		if err := CheckName(to.Name); err != nil {
			return invalidBecause("recipient name", err)
		}
	}
	if strings.TrimSpace(m.Subject) == "" {
		return invalid("empty subject")
	}
	if !validLine(m.Subject) || utf8.RuneCountInString(m.Subject) > maxSubjectRune {
		return invalid("subject has a control character or is too long")
	}
	if m.Text == "" && m.HTML == "" {
		return invalid("no body")
	}
	if !utf8.ValidString(m.Text) || !utf8.ValidString(m.HTML) {
		return invalid("body is not valid UTF-8")
	}
	if err := validHeaders(m.Headers); err != nil {
		return err
	}
	if len(m.PerRecipient) != 0 && len(m.PerRecipient) != len(m.To) {
		return invalid("per-recipient entries do not match the recipients")
	}
	for _, p := range m.PerRecipient {
		if err := validHeaders(p.Headers); err != nil {
			return err
		}
		for k, v := range p.Substitutions {
			if len(k) < 8 || len(k) > maxTokenLen || !plainToken(k) {
				return invalid("substitution key is not a plain token of 8 to 128 characters")
			}
			if !printableASCII(v) {
				return invalid("substitution value is not printable ASCII")
			}
		}
	}
	if len(m.Category) > maxCategoryLen || !plainToken(m.Category) {
		return invalid("category is not a plain word")
	}
	if m.ASMGroupID < 0 {
		return invalid("negative unsubscribe group")
	}
	if len(m.Ref) > maxTokenLen || !plainToken(m.Ref) {
		return invalid("ref is not a plain token")
	}
	return nil
}

// validLine reports whether s is valid UTF-8 without control characters,
// including the Unicode line and paragraph separators: text that must stay
// on one header line.
func validLine(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// validHeaders checks caller-set headers: RFC 5322 field names, not
// reserved and not repeated in another case; values of printable ASCII and
// tabs, the whole line within 998 octets.
func validHeaders(h map[string]string) error {
	seen := make(map[string]bool, len(h))
	for name, value := range h {
		if !fieldName(name) {
			return invalid("header name is not an RFC 5322 field name")
		}
		lower := strings.ToLower(name)
		if reserved[lower] {
			return invalid("header name is reserved")
		}
		if seen[lower] {
			return invalid("header name repeated")
		}
		seen[lower] = true
		if strings.ContainsAny(value, "\r\n") {
			return invalid("header value has a line break")
		}
		if !printableASCII(value) {
			return invalid("header value is not printable ASCII")
		}
		if len(name)+2+len(value) > maxHeaderLine {
			return invalid("header line longer than 998 octets")
		}
	}
	return nil
}

// printableASCII reports whether s is printable ASCII and tabs only.
func printableASCII(s string) bool {
	for _, c := range []byte(s) {
		if (c < ' ' || c > '~') && c != '\t' {
			return false
		}
	}
	return true
}

// fieldName reports whether s is an RFC 5322 field name: printable ASCII
// other than space and colon.
func fieldName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// plainToken reports whether s is empty or only ASCII letters, digits, '-'
// and '_': nothing personal fits comfortably, nothing can escape a file name
// or a header.
func plainToken(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
