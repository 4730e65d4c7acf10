package form

import "testing"

func TestMailbox(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"test@example.com":             "test@example.com",
		"test+tag@example.com":         "test@example.com",
		"test+a+b@example.com":         "test@example.com",
		"+tag@example.com":             "+tag@example.com", // nothing before the tag: the whole local part
		"t.e.s.t@example.com":          "t.e.s.t@example.com",
		"t.e.s.t+x@gmail.com":          "test@gmail.com",
		"te.st@googlemail.com":         "test@gmail.com",
		"test@xn--80ak6aa92e.com":      "test@xn--80ak6aa92e.com",
		"..@gmail.com":                 "..@gmail.com", // dots alone: kept rather than an empty mailbox
		"test.person+x@sub.gmail.com":  "test.person@sub.gmail.com",
		"test.person+x@gmail.com.evil": "test.person@gmail.com.evil",
	} {
		if got := Mailbox(in); got != want {
			t.Errorf("Mailbox(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClientBucket(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"192.0.2.7":                "192.0.2.7",
		"::ffff:192.0.2.7":         "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":     "2001:db8:1:2::/64",
		"2001:db8:1:2::1":          "2001:db8:1:2::/64",
		"fe80::1%eth0":             "fe80::/64",
		"not an address":           "not an address",
		"2001:0db8:0001:0002::abc": "2001:db8:1:2::/64",
	} {
		if got := ClientBucket(in); got != want {
			t.Errorf("ClientBucket(%q) = %q, want %q", in, got, want)
		}
	}
}
