package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/paymtech/leadgate/intake"
)

// limitFixture accepts fake submissions under a limit of one per client
// and one per mailbox, so the second submission that shares a bucket with
// the first is refused.
type limitFixture struct {
	storeFixture
	n int // submissions made, for a fresh phone each time (never a duplicate)
}

func (f *limitFixture) submit(t *testing.T, email, ip string) (*intake.Admission, error) {
	t.Helper()
	f.n++
	sub := fakePerson()
	sub.Email, sub.EmailKey = email, email
	sub.Phone = fmt.Sprintf("+770100%05d", f.n)
	a := application(sub)
	a.Meta.IP, a.Consent.IP = ip, ip
	a.PerIP, a.PerEmail = intake.Limit{N: 1, Per: time.Hour}, intake.Limit{N: 1, Per: time.Hour}
	return f.store.Leads.Accept(context.Background(), a)
}

func TestRateLimitCountsAnIPv6ClientPerSlash64(t *testing.T) {
	t.Parallel()
	f := &limitFixture{storeFixture: setupStore(t)}
	ctx := context.Background()
	first, err := f.submit(t, "test.v6a@example.com", "2001:db8:1:2::1")
	if err != nil {
		t.Fatalf("first from the /64: %v", err)
	}
	for i, ip := range []string{"2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:DB8:1:2:0:0:0:9"} {
		if _, err := f.submit(t, fmt.Sprintf("test.v6same%d@example.com", i), ip); intake.ErrorCode(err) != intake.ERateLimited {
			t.Errorf("another address of the same /64 (%s) = %v, want rate_limited", ip, err)
		}
	}
	for i, ip := range []string{"2001:db8:1:3::1", "2001:db8:2:2::1"} {
		if _, err := f.submit(t, fmt.Sprintf("test.v6other%d@example.com", i), ip); err != nil {
			t.Errorf("another /64 (%s) = %v, want its own bucket", ip, err)
		}
	}
	// The lead keeps the whole address, not the bucket.
	if l, err := f.store.Leads.Get(ctx, first.ID); err != nil || l.Meta.IP != "2001:db8:1:2::1" {
		t.Fatalf("stored IP = %+v, %v; want the full address", l.Meta, err)
	}
}

func TestRateLimitCountsAnIPv4ClientPerAddress(t *testing.T) {
	t.Parallel()
	f := &limitFixture{storeFixture: setupStore(t)}
	if _, err := f.submit(t, "test.v4a@example.com", "192.0.2.1"); err != nil {
		t.Fatalf("first: %v", err)
	}
	if _, err := f.submit(t, "test.v4b@example.com", "192.0.2.2"); err != nil {
		t.Errorf("the next address = %v, want its own bucket", err)
	}
	if _, err := f.submit(t, "test.v4c@example.com", "192.0.2.1"); intake.ErrorCode(err) != intake.ERateLimited {
		t.Errorf("the same address again = %v, want rate_limited", err)
	}
	// The same IPv4 client seen through an IPv6 socket.
	if _, err := f.submit(t, "test.v4d@example.com", "::ffff:192.0.2.2"); intake.ErrorCode(err) != intake.ERateLimited {
		t.Errorf("an IPv4-mapped address = %v, want the IPv4 address's bucket", err)
	}
}

func TestRateLimitCountsTheMailbox(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		first  string
		shares []string // count against first's mailbox
		apart  []string // mailboxes of their own
	}{
		{"plus-tags", "test.person@example.com",
			[]string{"test.person+1@example.com", "test.person+news+x@example.com"},
			[]string{"testperson@example.com", "other.person@example.com", "test.person@example.org"}},
		{"a tag on the first", "test.tag+a@example.com",
			[]string{"test.tag@example.com", "test.tag+b@example.com"}, []string{"test.tagb@example.com"}},
		{"gmail dots", "test.person@gmail.com",
			[]string{"testperson@gmail.com", "t.e.s.t.p.e.r.s.o.n+promo@gmail.com", "test.person@googlemail.com", "testperson+x@googlemail.com"},
			[]string{"testperson2@gmail.com", "testperson@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &limitFixture{storeFixture: setupStore(t)}
			ip := 0
			next := func() string { ip++; return fmt.Sprintf("198.51.100.%d", ip) } // never the IP limit
			first, err := f.submit(t, tc.first, next())
			if err != nil {
				t.Fatalf("first: %v", err)
			}
			for _, email := range tc.shares {
				if _, err := f.submit(t, email, next()); intake.ErrorCode(err) != intake.ERateLimited {
					t.Errorf("%s = %v, want rate_limited with %s", email, err, tc.first)
				}
			}
			for _, email := range tc.apart {
				adm, err := f.submit(t, email, next())
				if err != nil {
					t.Errorf("%s = %v, want a bucket of its own", email, err)
					continue
				}
				// Who the person is did not change: each address is its own.
				l, _ := f.store.Leads.Get(context.Background(), adm.ID)
				if fl, _ := f.store.Leads.Get(context.Background(), first.ID); l.Person == fl.Person {
					t.Errorf("%s is filed as the same person as %s", email, tc.first)
				}
			}
		})
	}
}

// The limit's buckets are not who the person is: a plus-tagged address
// stays a person of its own for dedupe and consent.
func TestPlusTaggedAddressIsItsOwnPerson(t *testing.T) {
	t.Parallel()
	f := setupStore(t)
	ctx := context.Background()
	var people []string
	for _, email := range []string{"test.person@gmail.com", "test.person+1@gmail.com", "testperson@gmail.com"} {
		sub := fakePerson()
		sub.Email, sub.EmailKey = email, email // the same phone: a duplicate only if the same person
		adm, err := f.store.Leads.Accept(ctx, application(sub))
		if err != nil || adm.Duplicate {
			t.Fatalf("%s = %+v, %v; want a new lead", email, adm, err)
		}
		l, _ := f.store.Leads.Get(ctx, adm.ID)
		people = append(people, l.Person)
	}
	if people[0] == people[1] || people[0] == people[2] || people[1] == people[2] {
		t.Fatalf("people = %v, want three", people)
	}
}
