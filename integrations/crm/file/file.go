// Package file is the development CRM driver: each lead becomes an indented
// JSON file (the crm.Lead document) named after its id in one directory, so a
// developer can see what sales would receive without any CRM account.
//
// The files hold personal data in clear, which is why production refuses
// this driver.
package file

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/paymtech/leadgate/integrations"
	"github.com/paymtech/leadgate/integrations/crm"
)

// System is the name this driver gives its Receipts and errors.
const System = "file"

// maxIDLen keeps a file name well inside every filesystem's limit.
const maxIDLen = 128

// Driver writes leads under one directory. It is safe for concurrent use:
// each write goes through its own temporary file.
type Driver struct {
	dir string
}

// New returns a Driver writing into dir, which is created (mode 0700) on the
// first Push rather than here, so that configuring the driver touches no disk.
func New(dir string) *Driver {
	return &Driver{dir: dir}
}

// Push writes l to dir/<id>.json (mode 0600) and returns Receipt{System:
// "file", Ref: "<id>.json"}. The file is written to a temporary name and
// renamed into place, so a reader never sees half a lead and a retry replaces
// the file instead of adding a second one.
//
// An id other than a plain token of letters, digits and hyphens is refused
// as a Permanent error, so a path can never leave dir. Filesystem errors are
// returned as they are (integrations.KindOf counts them Temporary): a full
// disk may have room later.
func (d *Driver) Push(ctx context.Context, l crm.Lead) (crm.Receipt, error) {
	if !plainToken(l.ID) {
		return crm.Receipt{}, &integrations.Error{System: System, Op: "push", Code: "lead id is not a plain token", Kind: integrations.Permanent}
	}
	if err := ctx.Err(); err != nil {
		return crm.Receipt{}, fmt.Errorf("file push: %w", err)
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return crm.Receipt{}, &integrations.Error{System: System, Op: "push", Code: "unencodable lead", Kind: integrations.Permanent, Err: err}
	}
	name := l.ID + ".json"
	if err := integrations.WriteFile(d.dir, name, append(data, '\n')); err != nil {
		return crm.Receipt{}, fmt.Errorf("file push: %w", err)
	}
	return crm.Receipt{System: System, Ref: name}, nil
}

// plainToken reports whether id is 1 to maxIDLen ASCII letters, digits and
// hyphens: nothing a path could be built from.
func plainToken(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
