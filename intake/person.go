package intake

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"
)

// A person's marketing-consent states (the person hash's "marketing" field;
// empty when they never opted in).
const (
	MarketingPending   = "pending"   // opted in on the form; the emailed link not yet followed
	MarketingActive    = "active"    // confirmed: product news may be sent
	MarketingWithdrawn = "withdrawn" // withdrawn, unsubscribed or suppressed
)

// Contact is the sealed part of a person's profile: where their mail goes.
// It is sealed bound to the person hash, as MarshalBinary encodes it.
type Contact struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// contactBinary is the first byte of a contact MarshalBinary encoded.
// Contacts sealed before it are JSON objects, whose first byte is '{'.
const contactBinary = 1

// MarshalBinary encodes c for sealing: contactBinary, then the address
// and the name, each a uvarint length and the bytes. A campaign opens one
// contact per recipient, and decoding JSON was half of that.
func (c Contact) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(c.Email)+len(c.Name))
	b = append(b, contactBinary)
	for _, s := range [...]string{c.Email, c.Name} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

// UnmarshalBinary decodes a contact in either form it was sealed in:
// MarshalBinary's, or the JSON of contacts sealed before it (rekey moves
// values to a new key as they are, so both stay in Redis).
func (c *Contact) UnmarshalBinary(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		*c = Contact{}
		return json.Unmarshal(b, c)
	}
	if len(b) == 0 || b[0] != contactBinary {
		return errors.New("contact: unknown encoding")
	}
	// Both fields are cut from one string: one allocation, not two.
	all := string(b)
	var fields [2]string
	at := 1
	for i := range fields {
		n, size := binary.Uvarint(b[at:])
		if size <= 0 || n > uint64(len(b)-at-size) {
			return errors.New("contact: truncated")
		}
		at += size
		fields[i], at = all[at:at+int(n)], at+int(n)
	}
	if at != len(b) {
		return errors.New("contact: trailing bytes")
	}
	c.Email, c.Name = fields[0], fields[1]
	return nil
}

// MailRecord is a campaign or notice email sent to a person, for the
// subject export (see Store.MailSent). Acknowledgements and opt-in
// requests are in their lead's disclosure log.
type MailRecord struct {
	Kind CampaignKind `json:"kind"`
	Ref  string       `json:"ref"` // the campaign or notice id
	At   time.Time    `json:"at"`  // when its sending began
}

// Proof is what is recorded with a change of consent made by the person:
// when, from where, and through what (a link, a provider's report, a
// privacy request).
type Proof struct {
	At        time.Time
	IP        string
	UserAgent string
	Source    string // "unsubscribe_link", "sendgrid:spamreport", "subject_request" …; empty for a confirmation link
}
