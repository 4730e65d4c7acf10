package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	"github.com/paymtech/leadgate/intake/taxid"
)

// people makes the request bodies: every one a different, obviously fake
// person (its own mailbox, phone and BIN), so that neither the per-mailbox
// limit nor deduplication ever answers instead of intake doing its work.
type people struct {
	run string // random per run: people of an earlier run on the same Redis are not repeated
}

func newPeople() people {
	b := make([]byte, 4)
	rand.Read(b)
	return people{run: hex.EncodeToString(b)}
}

// body is the JSON of person n.
func (p people) body(n uint64) []byte {
	return fmt.Appendf(nil, `{"entity_type":"legal_entity","name":"Test Testov","phone":"+7 701 %03d %02d %02d",`+
		`"email":"load-%s-%d@example.com","tax_id":%q,"products":["acquiring"],"lang":"ru","consent_processing":true}`,
		n/10000%1000, n/100%100, n%100, p.run, n, bin(n))
}

// bin is a BIN (legal entity, type 4) that intake/taxid accepts, different
// for each n below ten million: a registration month and a serial from n,
// then the check digit found by asking taxid.Parse, as the contract's rule
// is taxid's alone. A prefix whose check digit would be 10 is never issued,
// so the next serial is taken.
func bin(n uint64) string {
	for {
		prefix := fmt.Sprintf("%02d%02d40%05d", 10+n/1200000%15, 1+n/100000%12, n%100000)
		for d := byte('0'); d <= '9'; d++ {
			if _, err := taxid.Parse(prefix+string(d), time.Now()); err == nil {
				return prefix + string(d)
			}
		}
		n += 10000000 // same month and serial pattern, another year
	}
}

// clientAddr is the X-Forwarded-For of request n: one of the 16.7 million
// addresses of 10.0.0.0/8 in turn, so that the per-client limit
// (INTAKE_RATE_LIMIT) never trips; the target must trust the load tool's
// address (TRUSTED_PROXIES=127.0.0.1/32).
func clientAddr(n uint64) string {
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}).String()
}
