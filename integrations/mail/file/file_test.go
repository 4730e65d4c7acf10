package file

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/mail"
)

// message is a campaign-like Message to two recipients, with Kazakh and
// Russian text everywhere text may be.
func message() mail.Message {
	return mail.Message{
		From: mail.Address{Email: "noreply@example.com", Name: "Пэймтех"},
		To: []mail.Address{
			{Email: "test@example.com", Name: "Тест Тестов, ЖШС «Сынақ»"},
			{Email: "test2@example.com"},
		},
		// Long enough that its encoded form needs several encoded words.
		Subject: "Сәлеметсіз бе! Жаңа төлем өнімдері: қабылдау, төлем сілтемелері / Новые платёжные продукты для вашего бизнеса",
		Text:    "Құрметті клиент!\nЗдравствуйте!\n\nОтписаться: https://leads.example.com/v1/unsubscribe?token=t\n",
		HTML:    `<p>Құрметті клиент! Здравствуйте!</p><p><a href="https://leads.example.com/v1/unsubscribe?token=t">Отписаться</a></p>`,
		Headers: map[string]string{
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			"List-Unsubscribe":      "<https://leads.example.com/v1/unsubscribe?token=common>",
		},
		PerRecipient: []mail.Personal{
			{Headers: map[string]string{"List-Unsubscribe": "<https://leads.example.com/v1/unsubscribe?token=a1>"}},
			{Headers: map[string]string{"list-unsubscribe": "<https://leads.example.com/v1/unsubscribe?token=b2>"}},
		},
		Category: "campaign",
		Ref:      "cmp-7f3a-b1",
	}
}

// outbox lists the .eml files in dir, in name order.
func outbox(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// parsed is one .eml file as a mail reader sees it.
type parsed struct {
	header netmail.Header
	parts  map[string]string // Content-Type to decoded body
	order  []string          // Content-Types in file order
	raw    string
}

func parse(t *testing.T, path string) parsed {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := netmail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("net/mail cannot read %s: %v", filepath.Base(path), err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	p := parsed{header: msg.Header, parts: map[string]string{}, raw: string(raw)}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		// multipart.Reader decodes quoted-printable itself.
		body, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("part body: %v", err)
		}
		ct := part.Header.Get("Content-Type")
		p.parts[ct] = string(body)
		p.order = append(p.order, ct)
	}
	return p
}

func TestSendWritesOneParsableFilePerRecipient(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var", "outbox")
	m := message()
	if err := New(dir).Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	files := outbox(t, dir)
	if len(files) != len(m.To) {
		t.Fatalf("%d files, want one per recipient (%d)", len(files), len(m.To))
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("outbox directory mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(files) {
		t.Errorf("outbox holds %d entries, want only the %d messages (no temporary files)", len(entries), len(files))
	}
	name := regexp.MustCompile(`^(\d+)-cmp-7f3a-b1\.eml$`)
	wantList := []string{
		"<https://leads.example.com/v1/unsubscribe?token=a1>",
		"<https://leads.example.com/v1/unsubscribe?token=b2>",
	}
	dec := new(mime.WordDecoder)
	for i, path := range files {
		if !name.MatchString(filepath.Base(path)) {
			t.Errorf("file name %q, want <unix-nanos>-<ref>.eml", filepath.Base(path))
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v (%v), want 0600", filepath.Base(path), fi.Mode().Perm(), err)
		}
		p := parse(t, path)

		subject, err := dec.DecodeHeader(p.header.Get("Subject"))
		if err != nil || subject != m.Subject {
			t.Errorf("subject decodes to %q (%v), want %q", subject, err, m.Subject)
		}
		to, err := p.header.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Address != m.To[i].Email || to[0].Name != m.To[i].Name {
			t.Errorf("file %d: To = %v (%v), want only recipient %d with their name", i, to, err, i)
		}
		from, err := p.header.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Address != m.From.Email || from[0].Name != m.From.Name {
			t.Errorf("From = %v (%v), want %v", from, err, m.From)
		}
		if _, err := p.header.Date(); err != nil {
			t.Errorf("Date: %v", err)
		}
		if p.header.Get("Message-ID") == "" || p.header.Get("MIME-Version") != "1.0" {
			t.Errorf("Message-ID %q, MIME-Version %q", p.header.Get("Message-ID"), p.header.Get("MIME-Version"))
		}
		if got := p.header["List-Unsubscribe"]; len(got) != 1 || got[0] != wantList[i] {
			t.Errorf("file %d: List-Unsubscribe %q, want only this recipient's %q", i, got, wantList[i])
		}
		if got := p.header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
			t.Errorf("List-Unsubscribe-Post %q", got)
		}

		wantOrder := []string{"text/plain; charset=utf-8", "text/html; charset=utf-8"}
		if strings.Join(p.order, ",") != strings.Join(wantOrder, ",") {
			t.Errorf("parts %q, want %q", p.order, wantOrder)
		}
		// Quoted-printable turns line breaks into CRLF.
		if got := p.parts[wantOrder[0]]; got != strings.ReplaceAll(m.Text, "\n", "\r\n") {
			t.Errorf("text part %q, want %q", got, m.Text)
		}
		if got := p.parts[wantOrder[1]]; got != m.HTML {
			t.Errorf("html part %q, want %q", got, m.HTML)
		}

		for _, line := range strings.Split(p.raw, "\r\n") {
			if len(line) > 998 {
				t.Errorf("a line of %d octets", len(line))
			}
		}
		if strings.Contains(strings.ReplaceAll(p.raw, "\r\n", ""), "\n") {
			t.Error("a bare LF: every line must end in CRLF")
		}
	}
}

func TestSendSinglePartsAndRandomName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		text string
		html string
		want string // the one part's Content-Type
	}{
		{"text only", "Спасибо!", "", "text/plain; charset=utf-8"},
		{"html only", "", "<p>Рахмет!</p>", "text/html; charset=utf-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			m := mail.Message{
				From:    mail.Address{Email: "noreply@example.com"},
				To:      []mail.Address{{Email: "test@example.com"}},
				Subject: "Plain ASCII subject",
				Text:    tc.text,
				HTML:    tc.html,
			}
			if err := New(dir).Send(context.Background(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			files := outbox(t, dir)
			if len(files) != 1 {
				t.Fatalf("%d files, want 1", len(files))
			}
			if !regexp.MustCompile(`^\d+-[a-z2-7]{26}\.eml$`).MatchString(filepath.Base(files[0])) {
				t.Errorf("file name %q, want <unix-nanos>-<random>.eml without a ref", filepath.Base(files[0]))
			}
			p := parse(t, files[0])
			if len(p.order) != 1 || p.order[0] != tc.want {
				t.Errorf("parts %q, want only %q", p.order, tc.want)
			}
			if got := p.header.Get("Subject"); got != m.Subject {
				t.Errorf("ASCII subject written as %q, want it as it is", got)
			}
		})
	}
}

func TestSendRefusesInvalidMessage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := message()
	m.Headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click\r\nBcc: test@example.com"
	err := New(dir).Send(context.Background(), m)
	e, ok := errors.AsType[*integrations.Error](err)
	if !ok || e.Kind != integrations.Permanent || e.System != System || !errors.Is(err, mail.ErrInvalid) {
		t.Fatalf("Send = %v, want a Permanent file error wrapping mail.ErrInvalid", err)
	}
	if strings.Contains(err.Error(), "test@example.com") {
		t.Errorf("Send = %q quotes an address", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files written for a refused message", len(entries))
	}
}

func TestSendCancelled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(dir).Send(ctx, message()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d files written after cancellation", len(entries))
	}
}

func TestSendUnwritableDirectory(t *testing.T) {
	t.Parallel()
	blocker := filepath.Join(t.TempDir(), "outbox")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := New(blocker).Send(context.Background(), message())
	if err == nil || integrations.KindOf(err) != integrations.Temporary {
		t.Fatalf("Send into a file = %v, want a Temporary error", err)
	}
}

// Copies with the same Ref written at the same moment, from many
// goroutines, must still each get a file of their own.
func TestSendConcurrentNamesNeverCollide(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := New(dir)
	m := message()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := d.Send(context.Background(), m); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	if got := len(outbox(t, dir)); got != 10*len(m.To) {
		t.Errorf("%d files, want %d", got, 10*len(m.To))
	}
}

func TestStampIncreases(t *testing.T) {
	t.Parallel()
	d := New(t.TempDir())
	at := time.Unix(1_750_000_000, 0)
	first := d.stamp(at)
	if first != at.UnixNano() {
		t.Errorf("stamp = %d, want the time itself %d", first, at.UnixNano())
	}
	if second := d.stamp(at); second != first+1 {
		t.Errorf("second stamp at the same time = %d, want %d", second, first+1)
	}
	if earlier := d.stamp(at.Add(-time.Hour)); earlier != first+2 {
		t.Errorf("stamp after the clock stepped back = %d, want %d", earlier, first+2)
	}
}

// Names full of quotes, backslashes and encoded-word look-alikes read back
// exactly as written, ASCII or not; IDN domains are written in A-label form.
func TestSendNamesLiterallyAndDomainsAsALabels(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := message()
	m.From.Email = "noreply@пример.kz"
	m.PerRecipient = nil
	m.To = []mail.Address{
		{Email: "test@пример.қаз", Name: `=?utf-8?q?Bcc=3A_x?= "Test" \Testov\`},
		{Email: "test2@example.com", Name: `=?utf-8?b?0KLQtdGB0YI=?= «Тест» "Тестов" \ =?x?=`},
	}
	if err := New(dir).Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	wantAddr := []string{"test@xn--e1afmkfd.xn--80ao21a", "test2@example.com"}
	for i, path := range outbox(t, dir) {
		p := parse(t, path)
		to, err := p.header.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Name != m.To[i].Name || to[0].Address != wantAddr[i] {
			t.Errorf("file %d: To = %+v (%v), want name %q shown literally at %s", i, to, err, m.To[i].Name, wantAddr[i])
		}
		from, err := p.header.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Address != "noreply@xn--e1afmkfd.kz" {
			t.Errorf("From = %+v (%v), want the A-label domain", from, err)
		}
		if strings.Contains(p.raw, "пример") {
			t.Error("a Unicode domain went into a header")
		}
	}
}
