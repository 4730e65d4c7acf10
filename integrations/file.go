package integrations

import (
	"os"
	"path/filepath"
)

// WriteFile puts data at dir/name atomically — a temporary file, synced, then
// renamed — so a reader never sees half a file. The development drivers (CRM
// and mail to local files) write personal data in clear, so dir is 0700 and
// the file 0600 from its first byte.
func WriteFile(dir, name string, data []byte) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+".*.tmp") // CreateTemp makes it 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}
