package redisstore

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestKeysHaveOneOwner: keys.go is the schema. No other Go file of the
// module spells an lg: key, and every lg: key a script builds is one that
// keys.go lists.
func TestKeysHaveOneOwner(t *testing.T) {
	t.Parallel()
	schema, err := os.ReadFile("keys.go")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string // the keys and prefixes keys.go lists
	for _, m := range regexp.MustCompile(`"(lg:[^"]*)"`).FindAllStringSubmatch(string(schema), -1) {
		patterns = append(patterns, m[1])
	}
	own, err := filepath.Abs("keys.go")
	if err != nil {
		t.Fatal(err)
	}
	goKey := regexp.MustCompile("[\"`]lg:")
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "var") {
			return filepath.SkipDir
		}
		if abs, _ := filepath.Abs(path); d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || abs == own {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			if code, _, _ := strings.Cut(line, "//"); goKey.MatchString(code) {
				t.Errorf("%s:%d names an lg: key; keys.go is the only place that may: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := filepath.Glob("scripts/*.lua")
	more, _ := filepath.Glob("*/scripts/*.lua") // the subpackages' scripts
	scripts = append(scripts, more...)
	if err != nil || len(scripts) == 0 {
		t.Fatalf("scripts: %v %v", scripts, err)
	}
	luaKey := regexp.MustCompile(`'(lg:[a-z:]*)'`)
	for _, path := range scripts {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range luaKey.FindAllStringSubmatch(string(src), -1) {
			listed := slices.ContainsFunc(patterns, func(p string) bool {
				return m[1] == p || strings.HasSuffix(p, ":") && strings.HasPrefix(m[1], p)
			})
			if !listed {
				t.Errorf("%s builds %s, which keys.go does not list", path, m[1])
			}
		}
	}
}
