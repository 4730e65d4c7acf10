package form

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-playground/validator/v10"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/taxid"
	"github.com/paymtech/leadgate/integrations/mail"
)

// Form is a connection request as posted, before validation. JSON and
// urlencoded posts use the same names; unknown fields are ignored.
type Form struct {
	EntityType        string   `json:"entity_type" validate:"required,oneof=legal_entity sole_proprietor"`
	Name              string   `json:"name" validate:"max=200,mailname,line"`
	Phone             string   `json:"phone" validate:"required,max=40,phone"`
	Email             string   `json:"email" validate:"required,max=254,email1"`
	TaxID             string   `json:"tax_id" validate:"omitempty,max=20,taxid"`
	Products          []string `json:"products" validate:"max=20,dive,product"`
	Message           string   `json:"message" validate:"max=2000,text"`
	Lang              string   `json:"lang" validate:"omitempty,oneof=kk ru en"`
	ConsentProcessing Flag     `json:"consent_processing" validate:"consent"`
	ConsentMarketing  Flag     `json:"consent_marketing"`
	PageURL           string   `json:"page_url" validate:"max=2000,line"`
	Timezone          string   `json:"timezone" validate:"max=64,line"`
	UTMSource         string   `json:"utm_source" validate:"max=200,line"` // max is MaxTag
	UTMMedium         string   `json:"utm_medium" validate:"max=200,line"`
	UTMCampaign       string   `json:"utm_campaign" validate:"max=200,line"`
	RedirectURL       string   `json:"redirect_url" validate:"max=2000,line"`
	FormToken         string   `json:"form_token"` // when the page was rendered, signed; see formToken
	Website           string   `json:"website"`    // the honeypot: people never see it
}

// Flag is a form boolean: JSON true/false, or "on", "true", "1" as a
// checkbox or a script sends them.
type Flag bool

// UnmarshalJSON accepts a JSON boolean, 0/1, or a string a form would send.
func (f *Flag) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*f = Flag(v)
	case float64:
		*f = v == 1
	case string:
		*f = ParseFlag(v)
	case nil:
		*f = false
	default:
		return errors.New("not a boolean")
	}
	return nil
}

// ParseFlag reads a form value: "on", "true" and "1" are true.
func ParseFlag(s string) Flag {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "1":
		return true
	}
	return false
}

// normalized carries what the phone and email rules computed out of the
// validator, so each value is parsed once per request (phone parsing is the
// most expensive step of intake).
type normalized struct{ phone, email string }

type normalizedKey struct{}

// Validator checks forms against the contract's rules.
type Validator struct {
	v   *validator.Validate
	now func() time.Time
}

// NewValidator returns a Validator accepting product codes from catalog.
func NewValidator(catalog []string, now func() time.Time) *Validator {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		return strings.Split(f.Tag.Get("json"), ",")[0]
	})
	must := func(err error) {
		if err != nil {
			panic(err) // only a typo in a tag name gets here
		}
	}
	str := func(check func(string) bool) validator.Func {
		return func(fl validator.FieldLevel) bool { return check(fl.Field().String()) }
	}
	must(v.RegisterValidation("text", str(func(s string) bool { return IsText(s, true) })))
	must(v.RegisterValidation("line", str(func(s string) bool { return IsText(s, false) })))
	// The name is the display name of every email to the person: what the
	// mailer would refuse is refused here, by the same rule.
	must(v.RegisterValidation("mailname", str(func(s string) bool { return mail.CheckName(s) == nil })))
	must(v.RegisterValidationCtx("phone", func(ctx context.Context, fl validator.FieldLevel) bool {
		p, err := NormalizePhone(fl.Field().String())
		ctx.Value(normalizedKey{}).(*normalized).phone = p
		return err == nil
	}))
	must(v.RegisterValidationCtx("email1", func(ctx context.Context, fl validator.FieldLevel) bool {
		e, err := NormalizeEmail(fl.Field().String())
		ctx.Value(normalizedKey{}).(*normalized).email = e
		return err == nil
	}))
	must(v.RegisterValidation("taxid", str(func(s string) bool { _, err := taxid.Parse(s, now()); return err == nil })))
	must(v.RegisterValidation("product", str(func(s string) bool { return slices.Contains(catalog, s) })))
	must(v.RegisterValidation("consent", func(fl validator.FieldLevel) bool { return fl.Field().Bool() }))
	v.RegisterStructValidation(func(sl validator.StructLevel) {
		f := sl.Current().Interface().(Form)
		id, err := taxid.Parse(f.TaxID, now())
		if err != nil || f.TaxID == "" || (f.EntityType != intake.LegalEntity && f.EntityType != intake.SoleProprietor) {
			return // reported by the field rules
		}
		if taxid.CheckEntity(id, f.EntityType) != nil {
			sl.ReportError(f.TaxID, "tax_id", "TaxID", "taxid_entity", "")
		}
	}, Form{})
	return &Validator{v: v, now: now}
}

// Validate checks f and returns the Submission it describes, or the problem
// with each field. The honeypot is not checked here: the caller decides how
// to fool a bot.
func (v *Validator) Validate(f Form) (*intake.Submission, intake.FieldErrors) {
	f.trim()
	n := &normalized{}
	if err := v.v.StructCtx(context.WithValue(context.Background(), normalizedKey{}, n), f); err != nil {
		var verrs validator.ValidationErrors
		if !errors.As(err, &verrs) {
			panic(err) // only a programming error (not a struct) gets here
		}
		fields := intake.FieldErrors{}
		for _, fe := range verrs {
			name, _, _ := strings.Cut(fe.Field(), "[")
			if _, seen := fields[name]; !seen {
				fields[name] = v.problem(name, fe, f)
			}
		}
		return nil, fields
	}
	s := &intake.Submission{
		EntityType: f.EntityType, Name: f.Name, Email: f.Email, Message: f.Message,
		Lang: f.Lang, ConsentMarketing: bool(f.ConsentMarketing),
		PageURL: f.PageURL, Timezone: f.Timezone, UTMSource: f.UTMSource, UTMMedium: f.UTMMedium,
		UTMCampaign: f.UTMCampaign, RedirectURL: f.RedirectURL,
	}
	s.Phone, s.EmailKey = n.phone, n.email
	if f.TaxID != "" {
		id, _ := taxid.Parse(f.TaxID, v.now())
		s.TaxID = id.String()
	}
	for _, p := range f.Products { // keep the catalogue codes once each, in the order given
		if !slices.Contains(s.Products, p) {
			s.Products = append(s.Products, p)
		}
	}
	return s, nil
}

// problem names the catalogue message for a failed rule.
func (v *Validator) problem(field string, fe validator.FieldError, f Form) intake.Problem {
	if fe.Tag() == "max" && field != "email" && field != "phone" && field != "products" {
		n, _ := strconv.Atoi(fe.Param())
		return intake.Problem{Key: "field.too_long", Args: []any{n}}
	}
	return intake.Problem{Key: v.messageKey(field, fe, f)}
}

// messageKey names the catalogue message for a failed rule without arguments.
func (v *Validator) messageKey(field string, fe validator.FieldError, f Form) string {
	switch fe.Tag() {
	case "required":
		return "field.required"
	case "max":
		if field == "products" {
			return "products.unknown"
		}
		return field + ".too_long"
	case "oneof":
		return field + ".invalid"
	case "mailname":
		if errors.Is(mail.CheckName(f.Name), mail.ErrNameLineBreak) {
			return "name.line_break"
		}
		return "name.invalid"
	case "text", "line":
		if field == "name" {
			return "name.invalid"
		}
		return "field.invalid"
	case "phone":
		return "phone.invalid"
	case "email1":
		_, err := NormalizeEmail(f.Email)
		switch {
		case errors.Is(err, ErrEmailMultiple):
			return "email.multiple"
		case errors.Is(err, mail.ErrLocalPartTooLong):
			return "email.local_too_long"
		case errors.Is(err, mail.ErrLabelTooLong):
			return "email.label_too_long"
		case errors.Is(err, mail.ErrAddressTooLong):
			return "email.too_long_encoded" // within 254 characters as typed, longer in A-label form
		}
		return "email.invalid"
	case "taxid":
		_, err := taxid.Parse(f.TaxID, v.now())
		return "taxid." + taxidCode(err)
	case "taxid_entity":
		id, _ := taxid.Parse(f.TaxID, v.now())
		return "taxid." + taxidCode(taxid.CheckEntity(id, f.EntityType))
	case "product":
		return "products.unknown"
	case "consent":
		return "consent_processing.required"
	}
	return "field.invalid"
}

func taxidCode(err error) string {
	var te *taxid.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return "checksum"
}

// IsText reports whether s is text a person may type: it refuses control characters (but line breaks and tabs where
// multiline is allowed) and invalid UTF-8; any script is welcome.
func IsText(s string, multiline bool) bool {
	for _, r := range s {
		if r == unicode.ReplacementChar || (unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t'))) {
			return false
		}
	}
	return true
}

// MaxTag is the longest utm_source, utm_medium or utm_campaign a form
// takes, in characters (the max of their rules above).
const MaxTag = 200

// PageTag is a utm_* value of the form page's own address made fit for the
// form's hidden field: trimmed and cut to MaxTag characters, or "" when it
// holds what the rules refuse in a line (control characters, invalid
// UTF-8) — so the person's post never fails on a field they cannot see.
func PageTag(v string) string {
	v = strings.TrimSpace(v)
	if !IsText(v, false) {
		return ""
	}
	if r := []rune(v); len(r) > MaxTag {
		v = strings.TrimSpace(string(r[:MaxTag]))
	}
	return v
}

func (f *Form) trim() {
	for _, p := range []*string{&f.EntityType, &f.Name, &f.Phone, &f.Email, &f.TaxID, &f.Message, &f.Lang,
		&f.PageURL, &f.Timezone, &f.UTMSource, &f.UTMMedium, &f.UTMCampaign, &f.RedirectURL, &f.Website} {
		*p = strings.TrimSpace(*p)
	}
	f.EntityType = strings.ToLower(f.EntityType)
	f.Lang = strings.ToLower(f.Lang)
	products := make([]string, len(f.Products)) // a copy: the caller's slice stays as it was
	for i, p := range f.Products {
		products[i] = strings.TrimSpace(p)
	}
	f.Products = products
}

// Fingerprint is the canonical form of a submission that decides whether a
// reused Idempotency-Key came with "the same body": matching forms of each
// value, so "Əлия" and "Әлия" or two spellings of one phone are the same.
func Fingerprint(s *intake.Submission) string {
	products := slices.Sorted(slices.Values(s.Products)) // the same set in another order is the same request
	return strings.Join([]string{s.EntityType, Fold(s.Name), s.Phone, s.EmailKey, s.TaxID,
		strings.Join(products, ","), Fold(s.Message), s.Lang, strconv.FormatBool(s.ConsentMarketing)}, "\x00")
}
