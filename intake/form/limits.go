package form

import (
	"net/netip"
	"strings"
)

// What the rate limits count a submission by (intake.Limit, enforced by the
// store): rules of identity, like NormalizeEmail, not of storage.

// ClientBucket is what the per-IP rate limit counts a client by: an IPv4
// address alone, and an IPv6 address by its /64 — one subscriber's network
// holds 2^64 addresses, so counting each alone would let one client post
// without end. An IPv4 address mapped into IPv6 counts as IPv4. What cannot
// be parsed counts as written. The lead's metadata keeps the full address.
func ClientBucket(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}

// Mailbox is what the per-email rate limit counts a submission by: the
// mailbox that receives the mail, from an address in its matching form
// (NormalizeEmail). A plus-tag is dropped ("local+tag@" → "local@"),
// and for Gmail, which ignores dots and also answers as googlemail.com,
// the dots go and the domain is gmail.com. Only the limit counts this way:
// who the person is stays the whole address (Submission.EmailKey), so
// name+1@ and name@ are still two people with their own consent.
func Mailbox(emailKey string) string {
	at := strings.LastIndexByte(emailKey, '@')
	if at < 0 {
		return emailKey
	}
	local, domain := emailKey[:at], emailKey[at+1:]
	if tag := strings.IndexByte(local, '+'); tag > 0 {
		local = local[:tag]
	}
	if domain == "gmail.com" || domain == "googlemail.com" {
		domain = "gmail.com"
		if dotless := strings.ReplaceAll(local, ".", ""); dotless != "" {
			local = dotless
		}
	}
	return local + "@" + domain
}
