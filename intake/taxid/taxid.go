// Package taxid validates Kazakhstan 12-digit tax identifiers: the IIN
// (ЖСН/ИИН) of an individual, also used by most sole proprietors, and the BIN
// (БСН/БИН) of a legal entity, a joint individual entrepreneurship or a
// peasant farm.
//
// Structure of the 12 digits (positions counted from 1):
//
//	IIN: YYMMDD C SSSS K  birth date; C century and sex; serial; check digit
//	BIN: YYMM T A SSSSS K registration year and month; type; attribute; serial; check digit
//
// The 5th digit tells them apart: 0–3 is the tens digit of an IIN's birth
// day, 4–6 is a BIN's type (4 resident legal entity, 5 non-resident legal
// entity, 6 joint individual entrepreneurship), 7–9 is neither. A BIN's
// attribute is 0 head organisation, 1 branch, 2 representative office,
// 3 peasant (farm) economy.
//
// The check digit is the sum of the first eleven digits weighted 1…11,
// modulo 11; when that is 10 a second pass uses weights 3…11,1,2; when that
// is 10 as well the number is never issued and is rejected.
//
// An IIN's century digit is 1–2 for the 1800s, 3–4 for the 1900s, 5–6 for
// the 2000s. Some foreign citizens hold IINs with century digit 0; the
// century is then unknown and the birth date is accepted when it is a real,
// not future date in at least one of those three centuries (so 29 February
// needs a year divisible by four, 00 counting through 2000).
//
// Every failure is an *Error whose Code is one of the constants below. The
// codes are stable keys of the kk/ru/en message catalogue (as "taxid.<code>"):
//
//	length               not 12 digits once separators are removed
//	digits               a character other than a digit or separator
//	checksum             the check digit does not match, or no check digit exists
//	date                 IIN birth date impossible or in the future; BIN month not 01–12
//	century              IIN century digit 7–9
//	kind                 5th digit 7–9: neither IIN nor BIN
//	bin_attribute        BIN attribute digit 4–9
//	not_bin              CheckEntity: a legal entity gave an IIN
//	joint_ie_bin         CheckEntity: a legal entity gave a joint IE (type 6) BIN
//	not_sole_proprietor  CheckEntity: a sole proprietor gave a legal entity's BIN
//
// Error texts are English and never contain the identifier, which is
// personal data for an IIN.
package taxid

import (
	"errors"
	"time"
)

// Error codes carried by *Error. They are catalogue keys: never rename one.
const (
	CodeLength            = "length"
	CodeDigits            = "digits"
	CodeChecksum          = "checksum"
	CodeDate              = "date"
	CodeCentury           = "century"
	CodeKind              = "kind"
	CodeBINAttribute      = "bin_attribute"
	CodeNotBIN            = "not_bin"
	CodeJointIEBIN        = "joint_ie_bin"
	CodeNotSoleProprietor = "not_sole_proprietor"
)

// Error is the only error type Parse and CheckEntity return for a bad
// identifier. Callers translate Code; the Error text is for logs.
type Error struct {
	Code string
}

// messages are the log texts; they hold no digits so that no message can be
// mistaken for, or leak, part of an identifier.
var messages = map[string]string{
	CodeLength:            "taxid: not twelve digits",
	CodeDigits:            "taxid: contains a character that is not a digit",
	CodeChecksum:          "taxid: check digit does not match",
	CodeDate:              "taxid: date part is not a valid date",
	CodeCentury:           "taxid: century digit is not valid",
	CodeKind:              "taxid: neither an IIN nor a BIN",
	CodeBINAttribute:      "taxid: BIN attribute digit is not valid",
	CodeNotBIN:            "taxid: a legal entity must give a BIN",
	CodeJointIEBIN:        "taxid: a joint individual entrepreneurship BIN belongs to a sole proprietor",
	CodeNotSoleProprietor: "taxid: a sole proprietor must give an IIN or the BIN of a joint IE or peasant farm",
}

// Error returns an English description without any part of the input.
func (e *Error) Error() string {
	if m, ok := messages[e.Code]; ok {
		return m
	}
	return "taxid: invalid (" + e.Code + ")"
}

// Kind says whether an ID identifies an individual or an entity.
type Kind int

const (
	// IIN is an individual identification number (ЖСН/ИИН).
	IIN Kind = iota + 1
	// BIN is a business identification number (БСН/БИН).
	BIN
)

// String returns "IIN", "BIN", or "unknown" for the zero Kind.
func (k Kind) String() string {
	switch k {
	case IIN:
		return "IIN"
	case BIN:
		return "BIN"
	}
	return "unknown"
}

// ID is a validated identifier. The zero ID is not valid: its Kind is 0 and
// its String is empty; obtain IDs only from Parse.
type ID struct {
	digits string // exactly 12 ASCII digits once validated
}

const idLen = 12

// The check-digit weights of the first and second pass.
var (
	firstWeights  = [idLen - 1]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	secondWeights = [idLen - 1]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2}
)

// Parse validates s as an IIN or BIN. Spaces, no-break spaces (U+00A0,
// U+202F) and hyphens anywhere are dropped, since people type and paste the
// number in groups; any other non-digit, including other whitespace, is
// rejected. now bounds an IIN's birth date: a date after now's calendar day
// in now's location is rejected, so pass the time in Kazakhstan.
func Parse(s string, now time.Time) (ID, error) {
	var buf [idLen]byte
	n := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			// Keep counting past twelve so length is reported, without
			// growing memory with the input.
			if n < idLen {
				buf[n] = byte(r)
			}
			n++
		case r == ' ' || r == '-' || r == '\u00a0' || r == '\u202f':
		default:
			return ID{}, &Error{Code: CodeDigits}
		}
	}
	if n != idLen {
		return ID{}, &Error{Code: CodeLength}
	}
	id := ID{digits: string(buf[:])}
	// The checksum comes first: a typo is the likeliest mistake and the
	// check digit is what tells the person so.
	if k, ok := id.checkDigit(); !ok || k != id.digit(11) {
		return ID{}, &Error{Code: CodeChecksum}
	}
	var err error
	switch id.Kind() {
	case IIN:
		err = id.validateIIN(now)
	case BIN:
		err = id.validateBIN()
	default:
		err = &Error{Code: CodeKind}
	}
	if err != nil {
		return ID{}, err
	}
	return id, nil
}

// String returns the 12 digits without separators.
func (id ID) String() string { return id.digits }

// Kind returns IIN or BIN, or 0 for the zero ID.
func (id ID) Kind() Kind {
	if len(id.digits) != idLen {
		return 0
	}
	switch d := id.digit(4); {
	case d <= 3:
		return IIN
	case d <= 6:
		return BIN
	}
	return 0
}

// BINType returns a BIN's type digit: 4 resident legal entity, 5 non-resident
// legal entity, 6 joint individual entrepreneurship; -1 when id is not a BIN.
func (id ID) BINType() int {
	if id.Kind() != BIN {
		return -1
	}
	return id.digit(4)
}

// BINAttribute returns a BIN's attribute digit: 0 head organisation,
// 1 branch, 2 representative office, 3 peasant farm; -1 when id is not a BIN
// (not 0, which would read as a head organisation).
func (id ID) BINAttribute() int {
	if id.Kind() != BIN {
		return -1
	}
	return id.digit(5)
}

// Entity types of a connection request, as in the form's entity_type field.
const (
	entityLegal          = "legal_entity"
	entitySoleProprietor = "sole_proprietor"
)

// CheckEntity reports whether id fits the entity type of a connection
// request: "legal_entity" needs a BIN of type 4 or 5; "sole_proprietor"
// needs an IIN, a BIN of type 6 (joint IE) or a BIN with attribute 3
// (peasant farm). A failure is an *Error with code not_bin, joint_ie_bin or
// not_sole_proprietor. Any other entityType is a caller bug, reported as a
// plain error outside the catalogue.
func CheckEntity(id ID, entityType string) error {
	switch entityType {
	case entityLegal:
		switch {
		case id.Kind() != BIN:
			return &Error{Code: CodeNotBIN}
		case id.BINType() == 6:
			return &Error{Code: CodeJointIEBIN}
		}
		return nil
	case entitySoleProprietor:
		if id.Kind() == IIN || id.BINType() == 6 || id.BINAttribute() == 3 {
			return nil
		}
		return &Error{Code: CodeNotSoleProprietor}
	}
	return errUnknownEntity
}

var errUnknownEntity = errors.New("taxid: unknown entity type")

func (id ID) digit(i int) int { return int(id.digits[i] - '0') }

// number reads the two-digit field starting at position i.
func (id ID) number(i int) int { return id.digit(i)*10 + id.digit(i+1) }

// checkDigit computes the check digit; ok is false when both passes give 10.
func (id ID) checkDigit() (k int, ok bool) {
	for _, weights := range [...]*[idLen - 1]int{&firstWeights, &secondWeights} {
		sum := 0
		for i, w := range weights {
			sum += w * id.digit(i)
		}
		if r := sum % 11; r != 10 {
			return r, true
		}
	}
	return 0, false
}

func (id ID) validateIIN(now time.Time) error {
	c := id.digit(6)
	if c > 6 {
		return &Error{Code: CodeCentury}
	}
	yy, month, day := id.number(0), id.number(2), id.number(4)
	centuries := []int{1800, 1900, 2000}
	if c > 0 {
		centuries = centuries[(c-1)/2 : (c-1)/2+1]
	}
	ny, nm, nd := now.Date()
	today := time.Date(ny, nm, nd, 0, 0, 0, 0, time.UTC)
	for _, century := range centuries {
		if validDate(century+yy, month, day) &&
			!time.Date(century+yy, time.Month(month), day, 0, 0, 0, 0, time.UTC).After(today) {
			return nil
		}
	}
	return &Error{Code: CodeDate}
}

func (id ID) validateBIN() error {
	if m := id.number(2); m < 1 || m > 12 {
		return &Error{Code: CodeDate}
	}
	if id.BINAttribute() > 3 {
		return &Error{Code: CodeBINAttribute}
	}
	return nil
}

// validDate reports whether the day exists. time.Date moves an out-of-range
// day (00, 31 April, 29 February of a common year) into a neighbouring month,
// changing Day; it would do the same to a month, keeping Day, hence the
// explicit month check.
func validDate(year, month, day int) bool {
	if month < 1 || month > 12 {
		return false
	}
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Day() == day
}
