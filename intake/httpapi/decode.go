package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/paymtech/leadgate/intake"
)

// decodeAdmin reads an admin request's JSON body of at most limit bytes
// into v, refusing unknown fields so that a misspelt one is not silently
// ignored.
func decodeAdmin(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &intake.Error{Code: intake.ETooLarge, Message: fmt.Sprintf("body over %d bytes", limit)}
		}
		return &intake.Error{Code: intake.EBadRequest, Message: "body is not the expected JSON object: " + jsonProblem(err)}
	}
	if dec.More() {
		return &intake.Error{Code: intake.EBadRequest, Message: "body has more than one JSON value"}
	}
	return nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)
	case errors.Is(err, io.EOF):
		return "empty body"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "malformed"
}
