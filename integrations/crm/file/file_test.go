package file_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
	"github.com/paymtech/leadgate/integrations/crm/file"
)

func testLead() crm.Lead {
	at := time.Date(2025, 4, 15, 9, 30, 0, 0, time.UTC)
	return crm.Lead{
		ID:         "01964c2e-7b1a-7cc3-9f7e-3a1d2b4c5d6e",
		EntityType: "sole_proprietor",
		Name:       "Test Testov",
		Phone:      "+77010000000",
		Email:      "test@example.com",
		Products:   []string{"acquiring"},
		Lang:       "kk",
		ReceivedAt: at,
		Consent:    crm.Consent{Processing: true, PolicyVersion: "1", PolicyURL: "https://example.com/privacy", GivenAt: at},
		Metadata:   crm.Metadata{IP: "203.0.113.7", Cookies: map[string]string{"_ga": "GA1.1.1.1"}},
	}
}

// setup returns a driver writing into a directory that does not exist yet.
func setup(t *testing.T) (*file.Driver, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "var", "crm")
	return file.New(dir), dir
}

// readLead decodes dir/name and lists what else dir holds.
func readLead(t *testing.T, dir, name string) (crm.Lead, []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var l crm.Lead
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return l, names
}

func TestPush(t *testing.T) {
	t.Parallel()
	d, dir := setup(t)
	want := testLead()
	r, err := d.Push(t.Context(), want)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	name := want.ID + ".json"
	if r != (crm.Receipt{System: "file", Ref: name}) {
		t.Errorf("Receipt = %+v", r)
	}
	got, names := readLead(t, dir, name)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("file holds %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(names, []string{name}) {
		t.Errorf("dir holds %v, want only %s", names, name)
	}

	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("file mode = %v, want 0600", m)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m != 0o700 {
		t.Errorf("dir mode = %v, want 0700", m)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "{\n  \"id\": ") || !strings.HasSuffix(string(data), "}\n") {
		t.Errorf("file is not indented JSON ending in a newline:\n%s", data)
	}
}

func TestPushRetryOverwrites(t *testing.T) {
	t.Parallel()
	d, dir := setup(t)
	first := testLead()
	if _, err := d.Push(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	second := testLead()
	second.Message = "Second attempt."
	second.Products = nil
	if _, err := d.Push(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	got, names := readLead(t, dir, second.ID+".json")
	if !reflect.DeepEqual(got, second) {
		t.Errorf("file holds %+v, want the second push %+v", got, second)
	}
	if len(names) != 1 {
		t.Errorf("dir holds %v, want one file", names)
	}
}

func TestPushRejectsUnsafeID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{
		"", ".", "..", "../escape", "../../etc/passwd", "a/b", `a\b`, "/abs", "a.json", "a b",
		"x\x00y", "%2e%2e", "lead_1", "лид", strings.Repeat("a", 129),
	} {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			d := file.New(filepath.Join(root, "crm"))
			l := testLead()
			l.ID = id
			_, err := d.Push(t.Context(), l)
			if got := integrations.KindOf(err); got != integrations.Permanent {
				t.Fatalf("Push(%q) = %v (kind %v), want a permanent error", id, err, got)
			}
			entries, err := os.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Errorf("Push(%q) wrote %v under %s", id, entries, root)
			}
		})
	}
}

func TestPushAcceptsLongestID(t *testing.T) {
	t.Parallel()
	d, dir := setup(t)
	l := testLead()
	l.ID = strings.Repeat("A-9", 42) + "zz" // 128 characters
	r, err := d.Push(t.Context(), l)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, r.Ref)); err != nil {
		t.Error(err)
	}
}

func TestPushCanceled(t *testing.T) {
	t.Parallel()
	d, dir := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.Push(ctx, testLead()); !errors.Is(err, context.Canceled) {
		t.Errorf("Push = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir exists after a cancelled push (stat: %v)", err)
	}
}

func TestPushUnwritableDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	blocker := filepath.Join(root, "crm")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil { // a file where the dir should be
		t.Fatal(err)
	}
	_, err := file.New(blocker).Push(t.Context(), testLead())
	if err == nil {
		t.Fatal("Push succeeded with a file in place of its directory")
	}
	if got := integrations.KindOf(err); got != integrations.Temporary {
		t.Errorf("KindOf = %v, want temporary", got)
	}
	if strings.Contains(err.Error(), "test@example.com") || strings.Contains(err.Error(), "+77010000000") {
		t.Errorf("error %q holds personal data", err)
	}
}
