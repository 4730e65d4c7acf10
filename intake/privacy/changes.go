package privacy

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/form"
	"github.com/paymtech/leadgate/integrations/mail"
)

// ParseChanges validates the corrections of a rectification as the form
// validates a request, and returns them with the names of the fields
// changed (sorted).
func ParseChanges(raw map[string]json.RawMessage) (intake.Changes, []string, error) {
	var c intake.Changes
	if len(raw) == 0 {
		return c, nil, &intake.Error{Code: intake.EInvalid, Message: "changes: nothing to change; give name, phone, email or lang",
			Fields: intake.FieldErrors{"changes": {Key: "field.required"}}}
	}
	fields := intake.FieldErrors{}
	var names []string
	for name, v := range raw {
		var str string
		if !slices.Contains([]string{"name", "phone", "email", "lang"}, name) {
			fields["changes"] = intake.Problem{Key: "field.invalid"}
			continue
		}
		if err := json.Unmarshal(v, &str); err != nil {
			fields["changes."+name] = intake.Problem{Key: "field.invalid"}
			continue
		}
		str = strings.TrimSpace(str)
		names = append(names, name)
		switch name {
		case "name":
			if n := utf8.RuneCountInString(str); n > 200 {
				fields["changes.name"] = intake.Problem{Key: "field.too_long", Args: []any{200}}
			} else if err := mail.CheckName(str); errors.Is(err, mail.ErrNameLineBreak) {
				// A corrected name is mailed like a typed one: the mailer's
				// rule decides, as it does at intake.
				fields["changes.name"] = intake.Problem{Key: "name.line_break"}
			} else if err != nil || !form.IsText(str, false) {
				fields["changes.name"] = intake.Problem{Key: "name.invalid"}
			}
			c.Name = &str
		case "phone":
			phone, err := form.NormalizePhone(str)
			switch {
			case str == "":
				fields["changes.phone"] = intake.Problem{Key: "field.required"}
			case len(str) > 40:
				fields["changes.phone"] = intake.Problem{Key: "phone.too_long"}
			case err != nil:
				fields["changes.phone"] = intake.Problem{Key: "phone.invalid"}
			}
			c.Phone = &phone
		case "email":
			if _, err := checkEmail("changes.email", str); err != nil {
				fields["changes.email"] = err.(*intake.Error).Fields["changes.email"]
			}
			c.Email = &str
		case "lang":
			str = strings.ToLower(str)
			if str != "kk" && str != "ru" && str != "en" {
				fields["changes.lang"] = intake.Problem{Key: "lang.invalid"}
			}
			c.Lang = &str
		}
	}
	if len(fields) > 0 {
		msg := "changes: only name, phone, email and lang can be changed, each a string"
		if _, unknown := fields["changes"]; !unknown {
			msg = "invalid " + strings.Join(slices.Sorted(maps.Keys(fields)), ", ")
		}
		return c, nil, &intake.Error{Code: intake.EInvalid, Message: msg, Fields: fields}
	}
	slices.Sort(names)
	return c, names, nil
}

// fieldError is a validation error of one field of a subject request.
func fieldError(field, key, message string, args ...any) *intake.Error {
	return &intake.Error{Code: intake.EInvalid, Message: field + ": " + message, Fields: intake.FieldErrors{field: {Key: key, Args: args}}}
}

// checkEmail validates an address given in a subject request and returns
// its normalised form.
func checkEmail(field, email string) (string, error) {
	switch {
	case email == "":
		return "", fieldError(field, "field.required", "give the person's email address")
	case len(email) > 254:
		return "", fieldError(field, "email.too_long", "longer than 254 characters")
	}
	key, err := form.NormalizeEmail(email)
	if errors.Is(err, form.ErrEmailMultiple) {
		return "", fieldError(field, "email.multiple", "give one address")
	} else if err != nil {
		return "", fieldError(field, "email.invalid", "not a valid email address")
	}
	return key, nil
}
