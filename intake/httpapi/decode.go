package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/paymtech/leadgate/intake"
)

// decodeAdmin reads an admin request's JSON body of at most limit bytes
// into v, refusing unknown fields so that a misspelt one is not silently
// ignored.
//
// A key given twice is refused too: encoding/json would keep the last one
// silently, so {"email":"a","email":"b"} on an erasure would act on b while
// a log or a reviewer reading the body sees a.
func decodeAdmin(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &intake.Error{Code: intake.ETooLarge, Message: fmt.Sprintf("body over %d bytes", limit)}
		}
		return &intake.Error{Code: intake.EBadRequest, Message: "could not read the body"}
	}
	if key, err := repeatedKey(body); err != nil {
		return &intake.Error{Code: intake.EBadRequest, Message: "body is not the expected JSON object: " + jsonProblem(err)}
	} else if key != "" {
		return &intake.Error{Code: intake.EBadRequest, Message: fmt.Sprintf("body is not the expected JSON object: field %q is given more than once", key)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
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

// maxKeyName bounds how much of a repeated key an answer quotes: the name
// comes from the caller and may be anything.
const maxKeyName = 64

// repeatedKey returns the first object key that the JSON value at the start
// of body gives twice within one object, at any depth, as a dotted path
// ("a.b"); "" when there is none. Keys are compared as encoding/json matches
// them to struct fields — without regard to case — since {"email":…,
// "Email":…} fills one field twice just as an exact repeat does. err is the
// value's syntax error, if any; what follows the first value is left to the
// caller's decoder.
//
// Every well-formed body — each lead a website posts — takes scanRepeatedKey,
// a walk over the bytes; encoding/json's token stream allocates for each
// token and was a quarter of intake's allocations. The token walk stays for
// the rest, as it alone says where the syntax breaks and what comes first,
// a repeat or the break.
func repeatedKey(body []byte) (key string, err error) {
	if json.Valid(body) {
		return scanRepeatedKey(body), nil
	}
	return tokenRepeatedKey(body)
}

// scanRepeatedKey is repeatedKey for a body json.Valid accepts: one value,
// so neither syntax nor what follows the value need checking here.
func scanRepeatedKey(body []byte) string {
	type frame struct {
		seen map[string]string // folded key → the key as first given; nil in an array
		path string            // where this object or array is
		last string            // the key whose value is being read
	}
	var stack []frame
	wantKey := false // the next string is an object's key
	for i := 0; i < len(body); {
		switch c := body[i]; c {
		case '{', '[':
			f := frame{}
			if n := len(stack); n > 0 {
				f.path = stack[n-1].path
				if stack[n-1].seen != nil {
					f.path = joinKey(f.path, stack[n-1].last)
				}
			}
			if c == '{' {
				f.seen = map[string]string{}
			}
			stack = append(stack, f)
			wantKey = c == '{'
			i++
		case '}', ']':
			stack = stack[:len(stack)-1]
			wantKey = false
			i++
		case ',':
			wantKey = stack[len(stack)-1].seen != nil
			i++
		case '"':
			end := i + 1
			for body[end] != '"' {
				if body[end] == '\\' {
					end++
				}
				end++
			}
			end++ // past the closing quote
			if wantKey {
				top := &stack[len(stack)-1]
				k := jsonString(body[i:end])
				folded := foldKey(k)
				if first, dup := top.seen[folded]; dup {
					return joinKey(top.path, first)
				}
				top.seen[folded], top.last, wantKey = k, k, false
			}
			i = end
		default: // blanks, ':', numbers, true, false, null: no key in them
			i++
		}
	}
	return ""
}

// jsonString reads a valid quoted JSON string as encoding/json does (escapes
// resolved, broken UTF-8 as U+FFFD); the common plain one without its help.
func jsonString(quoted []byte) string {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(quoted, &s) // cannot fail: json.Valid read it as a string
	return s
}

// tokenRepeatedKey is repeatedKey by encoding/json's token stream, for a
// body that may be malformed.
func tokenRepeatedKey(body []byte) (key string, err error) {
	type frame struct {
		object  bool
		wantKey bool              // an object's next token is a key (or its end)
		seen    map[string]string // folded key → the key as first given
		path    string            // where this object or array is
		last    string            // the key whose value is being read
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers are not looked at; a huge one is no error here
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF && len(stack) > 0 {
			return "", io.ErrUnexpectedEOF // Token says EOF even inside an object
		} else if err == io.EOF {
			return "", nil
		} else if err != nil {
			return "", err
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = &stack[n-1]
		}
		if top != nil && top.object && top.wantKey {
			if _, end := tok.(json.Delim); end { // '}': the decoder allows nothing else here
				stack = stack[:len(stack)-1]
			} else {
				k, _ := tok.(string)
				folded := foldKey(k)
				if first, dup := top.seen[folded]; dup {
					return joinKey(top.path, first), nil
				}
				top.seen[folded], top.last, top.wantKey = k, k, false
			}
		} else {
			path := ""
			if top != nil {
				path = top.path
				if top.object {
					path, top.wantKey = joinKey(top.path, top.last), true
				}
			}
			switch tok {
			case json.Delim('{'):
				stack = append(stack, frame{object: true, wantKey: true, seen: map[string]string{}, path: path})
			case json.Delim('['):
				stack = append(stack, frame{path: path})
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) == 0 {
			return "", nil // the first value is complete
		}
	}
}

// foldKey is encoding/json's case-insensitive name matching: upper case,
// rune by rune.
func foldKey(k string) string { return strings.ToUpper(k) }

// joinKey names a key inside the object at path, shortened to maxKeyName
// bytes on a rune boundary.
func joinKey(path, key string) string {
	if path != "" {
		key = path + "." + key
	}
	if len(key) > maxKeyName {
		cut := maxKeyName
		for cut > 0 && !utf8.RuneStart(key[cut]) {
			cut--
		}
		key = key[:cut] + "…"
	}
	return key
}
