package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/paymtech/leadgate/intake"
)

// developmentConfig loads a development Config whose VarDir is a directory
// that does not exist yet, so ApplyDevelopmentDefaults creates it.
func developmentConfig(t *testing.T, varDir string, env map[string]string) *Config {
	t.Helper()
	e := map[string]string{"LEADGATE_VAR_DIR": varDir}
	for k, v := range env {
		e[k] = v
	}
	c, err := Load(mapEnv(e))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestApplyDevelopmentDefaultsGeneratesOnceAndKeeps(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var")
	first := developmentConfig(t, dir, nil)
	notes, err := first.ApplyDevelopmentDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Keys.Data) != 32 || len(first.Keys.Index) != 32 || slices.Equal(first.Keys.Data, first.Keys.Index) {
		t.Errorf("keys: data %d bytes, index %d bytes, equal %t; want two different 32-byte keys",
			len(first.Keys.Data), len(first.Keys.Index), slices.Equal(first.Keys.Data, first.Keys.Index))
	}
	var roles []intake.Role
	var secrets []string
	for _, tok := range first.Keys.AdminTokens {
		roles = append(roles, tok.Role)
		secrets = append(secrets, tok.Secret)
		if len(tok.Secret) < 16 || tok.Name == "" {
			t.Errorf("generated token %s:%s has a %d-character secret", tok.Role, tok.Name, len(tok.Secret))
		}
	}
	if want := []intake.Role{intake.RoleSales, intake.RoleMarketing, intake.RolePrivacy, intake.RoleAdmin, intake.RoleMetrics}; !slices.Equal(roles, want) {
		t.Errorf("generated roles %v, want %v", roles, want)
	}
	if s := slices.Compact(slices.Sorted(slices.Values(secrets))); len(s) != 5 {
		t.Errorf("generated secrets are not five different ones: %d distinct", len(s))
	}
	joined := strings.Join(notes, "\n")
	for _, tok := range first.Keys.AdminTokens {
		if !strings.Contains(joined, string(tok.Role)+":"+tok.Name+":"+tok.Secret) {
			t.Errorf("first notes do not show the %s token:\n%s", tok.Role, joined)
		}
	}

	if m := mode(t, dir); m != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, m)
	}
	for _, name := range []string{"data.key", "index.key", "admin-tokens"} {
		if m := mode(t, filepath.Join(dir, name)); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, m)
		}
	}

	second := developmentConfig(t, dir, nil)
	notes, err = second.ApplyDevelopmentDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(second.Keys.Data, first.Keys.Data) || !slices.Equal(second.Keys.Index, first.Keys.Index) {
		t.Error("a second start got different keys: its leads would not decrypt")
	}
	if !reflect.DeepEqual(second.Keys.AdminTokens, first.Keys.AdminTokens) {
		t.Error("a second start got different admin tokens")
	}
	joined = strings.Join(notes, "\n")
	for _, s := range secrets {
		if strings.Contains(joined, s) {
			t.Errorf("second notes show a token:\n%s", joined)
		}
	}
	if !strings.Contains(joined, filepath.Join(dir, "admin-tokens")) {
		t.Errorf("second notes do not say where the tokens are:\n%s", joined)
	}
}

func TestApplyDevelopmentDefaultsLeavesConfiguredValues(t *testing.T) {
	t.Parallel()
	all := map[string]string{
		"LEADGATE_DATA_KEY":     b64(testDataKey),
		"LEADGATE_INDEX_KEY":    b64(testIndexKey),
		"LEADGATE_ADMIN_TOKENS": "admin:ops:" + testToken,
	}
	tests := []struct {
		name      string
		env       map[string]string
		wantFiles []string
	}{
		{"everything configured", all, nil},
		{"only the data key", map[string]string{"LEADGATE_DATA_KEY": all["LEADGATE_DATA_KEY"]}, []string{"admin-tokens", "index.key"}},
		{"only the index key", map[string]string{"LEADGATE_INDEX_KEY": all["LEADGATE_INDEX_KEY"]}, []string{"admin-tokens", "data.key"}},
		{"only tokens", map[string]string{"LEADGATE_ADMIN_TOKENS": all["LEADGATE_ADMIN_TOKENS"]}, []string{"data.key", "index.key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "var")
			c := developmentConfig(t, dir, tt.env)
			want := *c
			notes, err := c.ApplyDevelopmentDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if want.Keys.Data != nil && !slices.Equal(c.Keys.Data, want.Keys.Data) ||
				want.Keys.Index != nil && !slices.Equal(c.Keys.Index, want.Keys.Index) ||
				want.Keys.AdminTokens != nil && !reflect.DeepEqual(c.Keys.AdminTokens, want.Keys.AdminTokens) {
				t.Error("a configured key or token was replaced")
			}
			if len(c.Keys.Data) != 32 || len(c.Keys.Index) != 32 || len(c.Keys.AdminTokens) == 0 {
				t.Error("a missing key or token was not filled")
			}
			var files []string
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				files = append(files, e.Name())
			}
			if !slices.Equal(files, tt.wantFiles) {
				t.Errorf("files in the var dir: %v, want %v", files, tt.wantFiles)
			}
			for _, s := range secretsOf(tt.env) {
				if strings.Contains(strings.Join(notes, "\n"), s) {
					t.Errorf("notes show the configured secret %q: %q", s, notes)
				}
			}
		})
	}
}

func TestApplyDevelopmentDefaultsDamagedFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, content string
	}{
		{"data key not base64", "data.key", "s3cr3t!garbage*"},
		{"data key of 16 bytes", "data.key", b64(testDataKey[:16])},
		{"data key empty", "data.key", ""},
		{"index key not base64", "index.key", "s3cr3t!garbage*"},
		{"index key of 33 bytes", "index.key", b64(append(slices.Clone(testIndexKey), 'x'))},
		{"tokens with a short secret", "admin-tokens", "admin:dev-admin:s3cr3t\n"},
		{"tokens with a bad role", "admin-tokens", "root:dev-root:s3cr3t-long-enough-token\n"},
		// A process killed between creating the file and writing it leaves it
		// empty; starting with no tokens at all would hide that.
		{"tokens empty", "admin-tokens", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "var")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			c := developmentConfig(t, dir, nil)
			notes, err := c.ApplyDevelopmentDefaults()
			if err == nil {
				t.Fatalf("damaged %s accepted; notes %q", tt.file, notes)
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %q does not name %s", err, tt.file)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q repeats the file's content", err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, tt.file)); string(b) != tt.content {
				t.Errorf("the damaged %s was overwritten", tt.file)
			}
		})
	}
}

func TestApplyDevelopmentDefaultsRefusesProduction(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var")
	env := productionEnv()
	env["LEADGATE_VAR_DIR"] = dir
	c, err := Load(mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyDevelopmentDefaults(); err == nil {
		t.Error("ApplyDevelopmentDefaults in production succeeded")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("ApplyDevelopmentDefaults in production touched %s: %v", dir, err)
	}
}

// Two processes started together (web and worker under one Procfile) must
// agree on one key, or one of them writes leads the other cannot read.
func TestApplyDevelopmentDefaultsConcurrentStartsAgree(t *testing.T) {
	t.Parallel()
	const rounds, starts = 50, 8
	base := t.TempDir()
	for round := range rounds {
		dir := filepath.Join(base, fmt.Sprint(round))
		configs := make([]*Config, starts)
		notes := make([][]string, starts)
		errs := make([]error, starts)
		for i := range configs {
			configs[i] = developmentConfig(t, dir, nil)
		}
		ready := make(chan struct{})
		var wg sync.WaitGroup
		for i := range configs {
			wg.Go(func() {
				<-ready
				notes[i], errs[i] = configs[i].ApplyDevelopmentDefaults()
			})
		}
		close(ready)
		wg.Wait()
		printed := 0
		for i, c := range configs {
			if errs[i] != nil {
				t.Fatalf("round %d, start %d: %v", round, i, errs[i])
			}
			if !slices.Equal(c.Keys.Data, configs[0].Keys.Data) || !slices.Equal(c.Keys.Index, configs[0].Keys.Index) {
				t.Fatalf("round %d: start %d got other keys than start 0", round, i)
			}
			if len(c.Keys.AdminTokens) != len(intake.TokenRoles) || !reflect.DeepEqual(c.Keys.AdminTokens, configs[0].Keys.AdminTokens) {
				t.Fatalf("round %d: start %d got %d tokens, not start 0's %d", round, i, len(c.Keys.AdminTokens), len(configs[0].Keys.AdminTokens))
			}
			if strings.Contains(strings.Join(notes[i], "\n"), c.Keys.AdminTokens[0].Secret) {
				printed++
			}
		}
		if printed != 1 {
			t.Fatalf("round %d: %d starts printed the new tokens, want exactly 1", round, printed)
		}
	}
}
