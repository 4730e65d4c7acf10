package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/paymtech/leadgate/intake"
)

// ApplyDevelopmentDefaults fills the data key, index key and admin tokens that
// are not configured with values generated once and kept under VarDir, so a
// restart against a real Redis can still read its leads and the tokens keep
// working. It returns lines for the operator: the tokens when they were just
// generated (once), else where to find them. Configured values are left alone
// and never echoed. It must not be called in production.
func (c *Config) ApplyDevelopmentDefaults() ([]string, error) {
	if c.Production {
		return nil, errors.New("development defaults requested in production")
	}
	if err := os.MkdirAll(c.VarDir, 0o700); err != nil {
		return nil, fmt.Errorf("development defaults: %w", err)
	}
	var notes []string
	for _, k := range []struct {
		key  *[]byte
		file string
	}{{&c.Keys.Data, "data.key"}, {&c.Keys.Index, "index.key"}} {
		if *k.key != nil {
			continue
		}
		v, _, err := c.keepOnce(k.file, func() (string, error) {
			return base64.StdEncoding.EncodeToString(randomBytes(32)), nil
		})
		if err != nil {
			return nil, err
		}
		if *k.key, err = base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err != nil || len(*k.key) != 32 {
			return nil, fmt.Errorf("development defaults: %s is damaged; delete it only if no Redis data needs it", filepath.Join(c.VarDir, k.file))
		}
		notes = append(notes, fmt.Sprintf("development key in %s", filepath.Join(c.VarDir, k.file)))
	}
	if len(c.Keys.AdminTokens) == 0 {
		v, created, err := c.keepOnce("admin-tokens", func() (string, error) {
			var b strings.Builder
			for _, role := range intake.TokenRoles {
				fmt.Fprintf(&b, "%s:dev-%s:%s\n", role, role, base64.RawURLEncoding.EncodeToString(randomBytes(24)))
			}
			return b.String(), nil
		})
		if err != nil {
			return nil, err
		}
		r := reader{getenv: func(string) string { return strings.ReplaceAll(strings.TrimSpace(v), "\n", ",") }}
		if c.Keys.AdminTokens = r.tokens("admin-tokens"); r.err == nil && len(c.Keys.AdminTokens) == 0 {
			r.err = errors.New("holds no tokens")
		}
		if r.err != nil {
			return nil, fmt.Errorf("development defaults: %s: %w", filepath.Join(c.VarDir, "admin-tokens"), r.err)
		}
		if created {
			notes = append(notes, "generated admin tokens (role:name:token), kept in "+filepath.Join(c.VarDir, "admin-tokens")+":")
			for _, t := range c.Keys.AdminTokens {
				notes = append(notes, fmt.Sprintf("  %s:%s:%s", t.Role, t.Name, t.Secret))
			}
		} else {
			notes = append(notes, "admin tokens: see "+filepath.Join(c.VarDir, "admin-tokens"))
		}
	}
	return notes, nil
}

// keepOnce returns the content of VarDir/name, creating it with generate the
// first time; two processes starting together agree on one value.
func (c *Config) keepOnce(name string, generate func() (string, error)) (content string, created bool, err error) {
	path := filepath.Join(c.VarDir, name)
	if b, err := os.ReadFile(path); err == nil {
		return string(b), false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("development defaults: %w", err)
	}
	v, err := generate()
	if err != nil {
		return "", false, err
	}
	// Write a private temporary file, then link it into place: the link
	// fails if another process got there first, and nobody ever reads a
	// file that is created but not yet written.
	f, err := os.CreateTemp(c.VarDir, name+".tmp*")
	if err != nil {
		return "", false, fmt.Errorf("development defaults: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(v); err != nil {
		f.Close()
		return "", false, fmt.Errorf("development defaults: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("development defaults: %w", err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", false, fmt.Errorf("development defaults: %w", err)
		}
		return string(b), false, nil
	} else if err != nil {
		return "", false, fmt.Errorf("development defaults: %w", err)
	}
	return v, true, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never returns an error since Go 1.24
	return b
}
