package privacy

import (
	"context"
	"strings"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
)

// Find returns the people an email (one at most) or a phone (everyone who
// gave it) names who have something held, for the console's desk, which
// then shows one person's page. It is not a subject request and records
// none: the officer has only looked, and the console's audit log says who
// did. The address and the phone are checked as Handle checks them.
func (s *Service) Find(ctx context.Context, email, phone string) ([]*intake.Subject, error) {
	email, phone = strings.TrimSpace(email), strings.TrimSpace(phone)
	var people []string
	switch {
	case email != "" && phone != "":
		return nil, &intake.Error{Code: intake.EInvalid, Message: "give email or phone, not both",
			Fields: intake.FieldErrors{"phone": {Key: "field.invalid"}}}
	case phone != "":
		p, err := form.NormalizePhone(phone)
		if err != nil || len(phone) > 40 {
			return nil, fieldError("phone", "phone.invalid", "not a valid phone number")
		}
		if people, err = s.People.PeopleByPhone(ctx, p); err != nil {
			return nil, err
		}
	default:
		person, err := s.personOf(email)
		if err != nil {
			return nil, err
		}
		people = []string{person}
	}
	var found []*intake.Subject
	for _, p := range people {
		sub, err := s.Person(ctx, p)
		if intake.ErrorCode(err) == intake.ENotFound {
			continue
		} else if err != nil {
			return nil, err
		}
		found = append(found, sub)
	}
	return found, nil
}

// Person returns what is held about one person (by their hash, as Find's
// answers name them); ENotFound when nothing is, as after an erasure.
func (s *Service) Person(ctx context.Context, person string) (*intake.Subject, error) {
	return s.Records.Subject(ctx, person)
}
