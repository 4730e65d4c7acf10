// Package file is the development mail driver: instead of sending, it writes
// each recipient's copy of a message as an RFC 5322 .eml file in one
// directory (var/outbox/), which any mail client opens, so a developer can
// read what people would receive without a SendGrid account.
//
// The files hold addresses in clear, which is why production refuses this
// driver.
package file

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/mail"
)

// System is the name this driver gives its errors.
const System = "file"

// op names what this driver does, in its errors.
const op = "mail.send"

// Driver writes messages under one directory. It is safe for concurrent use:
// each file goes through its own temporary file, and names never repeat
// within a process.
type Driver struct {
	dir string

	mu   sync.Mutex
	last int64 // the last file's time stamp, so that names strictly increase
}

var _ mail.Mailer = (*Driver)(nil)

// New returns a Driver writing into dir, which is created (mode 0700) on the
// first Send rather than here, so that configuring the driver touches no
// disk.
func New(dir string) *Driver {
	return &Driver{dir: dir}
}

// Send writes one file per recipient, as SendGrid would deliver one copy to
// each: dir/<unix-nanos>-<ref>.eml (a random word in place of an empty
// Ref), mode 0600, written to a temporary name and renamed into place so a
// reader never sees half a message. The time stamps strictly increase, so
// the files sort in the order they were written and the copies of one Message
// never overwrite each other.
//
// Each file is multipart/alternative with the text/plain part first, then
// the text/html one, both UTF-8 and quoted-printable; non-ASCII subjects and
// names are RFC 2047 encoded words; a name of printable ASCII is a quoted
// string, where look-alikes of encoded words are not decoded. Domains are in
// A-label form (mail.ASCIIAddress). The recipient's PerRecipient headers
// replace Headers of the same name, and its substitutions are applied.
//
// An invalid Message is refused as a Permanent error before anything is
// written. Filesystem errors are returned wrapped (integrations.KindOf
// counts them Temporary: a full disk may have room later).
func (d *Driver) Send(ctx context.Context, m mail.Message) error {
	if err := m.Validate(); err != nil {
		return &integrations.Error{System: System, Op: op, Code: err.Error(), Kind: integrations.Permanent, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file mail.send: %w", err)
	}
	tag := m.Ref
	if tag == "" {
		tag = strings.ToLower(rand.Text())
	}
	date := time.Now()
	for i := range m.To {
		data, err := compose(m, i, date)
		if err != nil {
			return fmt.Errorf("file mail.send: %w", err)
		}
		name := strconv.FormatInt(d.stamp(date), 10) + "-" + tag + ".eml"
		if err := integrations.WriteFile(d.dir, name, data); err != nil {
			return fmt.Errorf("file mail.send: %w", err)
		}
	}
	return nil
}

// stamp returns a Unix time in nanoseconds no earlier than t and later than
// any it returned before.
func (d *Driver) stamp(t time.Time) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = max(t.UnixNano(), d.last+1)
	return d.last
}

// compose renders recipient i's copy of m.
func compose(m mail.Message, i int, date time.Time) ([]byte, error) {
	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	// Validate passed, so both conversions succeed: domains go in A-label
	// form, as SendGrid is given them.
	from, _ := mail.ASCIIAddress(m.From.Email)
	to, _ := mail.ASCIIAddress(m.To[i].Email)
	header("From", fold((&netmail.Address{Name: m.From.Name, Address: from}).String()))
	header("To", fold((&netmail.Address{Name: m.To[i].Name, Address: to}).String()))
	header("Subject", fold(mime.BEncoding.Encode("utf-8", m.Subject)))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", "<"+strings.ToLower(rand.Text())+"@"+messageIDDomain(from)+">")
	header("MIME-Version", "1.0")
	var own map[string]string
	if len(m.PerRecipient) != 0 {
		own = m.PerRecipient[i].Headers
		m.Subject, m.Text, m.HTML = substitute(m.PerRecipient[i].Substitutions, m.Subject, m.Text, m.HTML)
	}
	for _, name := range headerNames(m.Headers, own) {
		if v, ok := own[name]; ok {
			header(name, v)
		} else {
			header(name, m.Headers[name])
		}
	}

	mw := multipart.NewWriter(&b)
	header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		if part.body == "" {
			continue
		}
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// substitute applies a recipient's substitutions, as SendGrid does.
func substitute(subs map[string]string, subject, text, html string) (string, string, string) {
	if len(subs) == 0 {
		return subject, text, html
	}
	pairs := make([]string, 0, 2*len(subs))
	for k, v := range subs {
		pairs = append(pairs, k, v)
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace(subject), r.Replace(text), r.Replace(html)
}

// headerNames returns the names of the caller-set headers of one copy,
// sorted: every name in own, and those of common that own does not replace
// (names match case-insensitively, as in mail).
func headerNames(common, own map[string]string) []string {
	names := make([]string, 0, len(common)+len(own))
	replaced := make(map[string]bool, len(own))
	for name := range own {
		names = append(names, name)
		replaced[strings.ToLower(name)] = true
	}
	for name := range common {
		if !replaced[strings.ToLower(name)] {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return names
}

// fold breaks a header value between the encoded words that mime and
// net/mail produce for a long non-ASCII text, keeping each line within the
// 78 characters RFC 5322 recommends; readers unfold them, and RFC 2047
// ignores the white space between adjacent encoded words.
func fold(v string) string {
	return strings.ReplaceAll(v, "?= =?", "?=\r\n =?")
}

// messageIDDomain is the right-hand side of a Message-ID: the sender's
// domain when it is plain ASCII, as a message's own would be, else
// "localhost".
func messageIDDomain(from string) string {
	domain := from[strings.LastIndexByte(from, '@')+1:]
	for _, c := range []byte(domain) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return "localhost"
		}
	}
	return domain
}
