package redisstore

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts: each does one step that must be atomic (Redis runs a
// script alone), and each Go variable that loads one documents its KEYS and
// ARGV.
//
//go:embed scripts/*.lua
var scriptFiles embed.FS

// script loads one of this package's scripts.
func script(name string) *redis.Script { return LoadScript(scriptFiles, name) }

// LoadScript loads the embedded script scripts/name of fsys, for this
// package and its subpackages; a missing file is a mistake that every test
// run catches at package initialisation.
func LoadScript(fsys embed.FS, name string) *redis.Script {
	src, err := fsys.ReadFile("scripts/" + name)
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(src))
}
