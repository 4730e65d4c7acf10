package templates

import (
	"embed"
	"encoding/json"
	"fmt"
)

// messageFiles holds one flat JSON object per language, key → text.
//
//go:embed messages/*.json
var messageFiles embed.FS

// catalogue maps each language to its texts by key.
type catalogue map[Lang]map[string]string

// messages is loaded once at start-up. The files are compiled into the
// binary, so a file that does not parse is a build defect: loadCatalogue
// panics and the package tests catch it before any release.
var messages = loadCatalogue()

func loadCatalogue() catalogue {
	c := make(catalogue, len(languages))
	for _, l := range languages {
		raw, err := messageFiles.ReadFile("messages/" + string(l) + ".json")
		if err != nil {
			panic(fmt.Errorf("templates: read %s catalogue: %w", l, err))
		}
		m := map[string]string{}
		if err := json.Unmarshal(raw, &m); err != nil {
			panic(fmt.Errorf("templates: parse %s catalogue: %w", l, err))
		}
		c[l] = m
	}
	return c
}

// fallback is the order in which catalogues are searched after the requested
// language: Russian is understood by nearly every visitor in Kazakhstan,
// English is the last resort.
var fallback = []Lang{RU, EN}

// lookup finds key in lang, then in the fallback languages.
func (c catalogue) lookup(lang Lang, key string) (string, bool) {
	if m, ok := c[lang][key]; ok {
		return m, true
	}
	for _, l := range fallback {
		if m, ok := c[l][key]; ok {
			return m, true
		}
	}
	return "", false
}

// message is Message over c.
func (c catalogue) message(lang Lang, key string, args ...any) string {
	m, ok := c.lookup(lang, key)
	if !ok {
		return key
	}
	if len(args) == 0 {
		return m
	}
	return fmt.Sprintf(m, args...)
}

// Message returns the text for key in lang. A key missing in lang falls back
// to ru, then en; a key missing everywhere comes back as the key itself, so a
// gap shows up on the page instead of an empty string (the package tests
// make sure there is none). With args, the text is formatted by
// fmt.Sprintf, so "field.too_long" takes the maximum number of characters;
// without args the text is returned as written.
func Message(lang Lang, key string, args ...any) string {
	return messages.message(lang, key, args...)
}

// ProductLabel returns the catalogue label of a product code in lang
// (key "product.<code>"), or the code itself for a product added to the
// catalogue configuration without a label, so the form still offers it.
func ProductLabel(lang Lang, code string) string {
	if m, ok := messages.lookup(lang, "product."+code); ok {
		return m
	}
	return code
}
