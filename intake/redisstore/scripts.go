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

// script loads an embedded script; a missing file is a mistake that every
// test run catches at package initialisation.
func script(name string) *redis.Script {
	src, err := scriptFiles.ReadFile("scripts/" + name)
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(src))
}
