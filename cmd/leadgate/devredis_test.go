package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/config/redistest"
)

// bitfieldCases are BITFIELD calls on key "k", in order: each after the ones
// before it.
var bitfieldCases = [][]any{
	{"BITFIELD", "k", "GET", "u1", 0}, // no key yet: zeros, and no key made
	{"BITFIELD", "k"},
	{"BITFIELD", "k", "SET", "u1", 5, 1, "GET", "u1", 5, "GET", "u8", 0, "GET", "u1", 4000},
	{"BITFIELD", "k", "SET", "i8", "#1", -100, "GET", "i8", "#1", "GET", "u8", "#1", "get", "i4", 8},
	{"BITFIELD", "k", "SET", "u5", 3, 31, "GET", "i5", 3, "GET", "u16", 0, "set", "u7", 13, 200},
	{"BITFIELD", "k", "INCRBY", "u2", 100, 1, "INCRBY", "u2", 100, 3, "INCRBY", "u2", 100, -5},
	{"BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "u2", 102, 5, "INCRBY", "u2", 102, -9, "INCRBY", "i3", 110, 100, "INCRBY", "i3", 110, -100},
	{"BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u2", 102, 1, "INCRBY", "u2", 102, 4, "SET", "i4", 120, 8, "overflow", "wrap", "SET", "i4", 120, 8},
	{"BITFIELD", "k", "SET", "u8", 200, -1, "OVERFLOW", "SAT", "SET", "u8", 208, -1, "OVERFLOW", "FAIL", "SET", "u8", 216, -1, "GET", "u32", 200},
	{"BITFIELD", "k", "SET", "i64", 256, "-9223372036854775808", "INCRBY", "i64", 256, -1, "OVERFLOW", "SAT", "INCRBY", "i64", 256, "9223372036854775807", "INCRBY", "i64", 256, 1},
	{"BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "i64", 256, "-9223372036854775808", "INCRBY", "i64", 256, -1, "OVERFLOW", "FAIL", "INCRBY", "i64", 256, -1},
	{"BITFIELD", "k", "SET", "u63", 320, "9223372036854775807", "INCRBY", "u63", 320, 1, "OVERFLOW", "SAT", "INCRBY", "u63", 320, "-9223372036854775808"},
	{"BITFIELD", "k", "OVERFLOW", "FAIL", "SET", "u8", 8000, 300}, // refused, yet the string grows to the field
	// Refused before anything is read or written.
	{"BITFIELD", "k", "SET", "u1", 0, 1, "GET", "u64", 0},
	{"BITFIELD", "k", "SET", "u1", 0, 1, "GET", "i65", 0},
	{"BITFIELD", "k", "GET", "u0", 0},
	{"BITFIELD", "k", "GET", "x8", 0},
	{"BITFIELD", "k", "GET", "I8", 0},
	{"BITFIELD", "k", "GET", "U8", 0},
	{"BITFIELD", "k", "GET", "u08", 0},
	{"BITFIELD", "k", "GET", "u8", -1},
	{"BITFIELD", "k", "GET", "u8", "+1"},
	{"BITFIELD", "k", "GET", "u8", "#-1"},
	{"BITFIELD", "k", "GET", "u8", "4294967296"},
	{"BITFIELD", "k", "GET", "u8", "#536870912"},
	{"BITFIELD", "k", "GET", "u8", "x"},
	{"BITFIELD", "k", "SET", "u8", 0, "1.5"},
	{"BITFIELD", "k", "SET", "u8", 0, "-0"},
	{"BITFIELD", "k", "SET", "u8", 0},
	{"BITFIELD", "k", "GET", "u8"},
	{"BITFIELD", "k", "FOO", "u8", 0},
	{"BITFIELD", "k", "OVERFLOW"},
	{"BITFIELD", "k", "OVERFLOW", "BAD", "GET", "u8", 0},
}

// randomBitfield is a random BITFIELD call on key, mostly the campaigns' u1
// GETs and SETs; widths stop at maxBits.
func randomBitfield(rnd *rand.Rand, key string, maxBits int) []any {
	args := []any{"BITFIELD", key}
	for range 1 + rnd.IntN(6) {
		if rnd.IntN(4) == 0 {
			args = append(args, "OVERFLOW", []string{"WRAP", "SAT", "FAIL"}[rnd.IntN(3)])
		}
		typ := "u1"
		if rnd.IntN(2) == 0 {
			typ = fmt.Sprintf("%c%d", "ui"[rnd.IntN(2)], 1+rnd.IntN(maxBits))
		}
		offset := any(rnd.IntN(300))
		if rnd.IntN(5) == 0 {
			offset = fmt.Sprintf("#%d", rnd.IntN(20))
		}
		value := rnd.Int64() >> rnd.IntN(64)
		if rnd.IntN(2) == 0 {
			value = -value
		}
		switch rnd.IntN(3) {
		case 0:
			args = append(args, "GET", typ, offset)
		case 1:
			args = append(args, "SET", typ, offset, value)
		default:
			args = append(args, "INCRBY", typ, offset, value)
		}
	}
	return args
}

// TestBitfieldPortMatchesRedis: the port gives a real redis-server's
// replies and errors, to the bit and for every width, and leaves the same
// string.
func TestBitfieldPortMatchesRedis(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	var local []byte // what the port holds for "k"
	check := func(args []any) {
		t.Helper()
		want, wantErr := rdb.Do(ctx, args...).Result()
		strs := make([]string, len(args)-2)
		for i, a := range args[2:] {
			strs[i] = fmt.Sprint(a)
		}
		ops, err := parseBitfield(strs)
		if wantErr != nil || err != nil {
			if wantErr == nil || err == nil || err.Error() != wantErr.Error() {
				t.Fatalf("%v: the port says %v, Redis %v", args, err, wantErr)
			}
			return
		}
		got, write := runBitfield(local, ops)
		if write != nil {
			local = write
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%v = %v, Redis says %v", args, got, want)
		}
		held, err := rdb.Get(ctx, "k").Result()
		if errors.Is(err, redis.Nil) != (local == nil) || held != string(local) {
			t.Fatalf("after %v the port holds %x, Redis %x (%v)", args, local, held, err)
		}
	}
	for _, args := range bitfieldCases {
		check(args)
	}
	rnd := rand.New(rand.NewPCG(12, 2026))
	for range 1000 {
		check(randomBitfield(rnd, "k", 64))
	}
}

// TestEmbeddedRedisRunsBitfieldInScripts: the development setup's embedded
// Redis runs a script's BITFIELD as a real redis-server does — the same
// replies, errors and bits; a key of GETs alone is not made; the TTL stays —
// and refuses a client's, which it could not run atomically.
func TestEmbeddedRedisRunsBitfieldInScripts(t *testing.T) {
	t.Parallel()
	mini, err := startDevRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mini.Close)
	dev := redis.NewClient(&redis.Options{Addr: mini.Addr()})
	t.Cleanup(func() { dev.Close() })
	real := redistest.Start(t).Client(t)
	ctx := context.Background()
	for _, c := range []redis.UniversalClient{real, dev} {
		c.HSet(ctx, "hash", "f", "v")
		c.Set(ctx, "ttl", "x", time.Hour)
	}
	const script = "return redis.call('BITFIELD', KEYS[1], unpack(ARGV))"
	// Lua numbers are doubles, in Redis as here: past 2^53 a script's reply
	// is rounded on both, so widths stop at 53 bits.
	rnd := rand.New(rand.NewPCG(7, 2026))
	calls := [][]any{
		{"BITFIELD", "hash", "GET", "u8", 0},
		{"BITFIELD", "hash", "SET", "u8", 0, 1},
		{"BITFIELD", "missing", "GET", "u8", 0},
		{"BITFIELD", "ttl", "SET", "u8", 0, 1},
		{"BITFIELD", "k", "FOO"},
		{"BITFIELD", "k", "GET", "u64", 0},
		// mark.lua's batch: are these people marked, then mark them.
		{"BITFIELD", "marks", "GET", "u1", 3, "GET", "u1", 17, "GET", "u1", 1000},
		{"BITFIELD", "marks", "SET", "u1", 3, 1, "SET", "u1", 1000, 1},
		{"BITFIELD", "marks", "GET", "u1", 3, "GET", "u1", 17, "GET", "u1", 1000},
	}
	for range 300 {
		calls = append(calls, randomBitfield(rnd, "k", 53))
	}
	for _, args := range calls {
		keys, argv := []string{args[1].(string)}, args[2:]
		want, wantErr := real.Eval(ctx, script, keys, argv...).Result()
		got, err := dev.Eval(ctx, script, keys, argv...).Result()
		if wantErr != nil {
			// Each says where in the script it failed in its own words.
			msg, _, _ := strings.Cut(wantErr.Error(), " script:")
			if err == nil || !strings.Contains(err.Error(), msg) {
				t.Fatalf("%v from a script: %v, real Redis: %v", args, err, wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%v from a script = %v %v, real Redis: %v", args, got, err, want)
		}
	}
	for _, key := range []string{"k", "marks", "ttl", "missing"} {
		want, wantErr := real.Get(ctx, key).Result()
		got, err := dev.Get(ctx, key).Result()
		if got != want || errors.Is(err, redis.Nil) != errors.Is(wantErr, redis.Nil) {
			t.Errorf("%s holds %x (%v), real Redis %x (%v)", key, got, err, want, wantErr)
		}
	}
	if ttl := dev.TTL(ctx, "ttl").Val(); ttl < 59*time.Minute {
		t.Errorf("after a BITFIELD the TTL is %v, want the hour it had", ttl)
	}
	if err := dev.Do(ctx, "BITFIELD", "k", "SET", "u1", 0, 1).Err(); err == nil || !strings.Contains(err.Error(), "only from a script") {
		t.Errorf("a client's BITFIELD = %v, want it refused", err)
	}
}

// TestEmbeddedRedisKnowsEveryScriptCommand: every command leadgate's Lua
// scripts call exists in the embedded Redis, so a script added or changed
// later cannot stop there with "Unknown Redis command called from script"
// while it works on a real Redis. The commands must be written as string
// literals for this check to see them.
func TestEmbeddedRedisKnowsEveryScriptCommand(t *testing.T) {
	t.Parallel()
	mini, err := startDevRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mini.Close)
	files, err := filepath.Glob("../../intake/redisstore/scripts/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts found: %v", err)
	}
	call := regexp.MustCompile(`redis\.p?call\(\s*(\S)`)
	literal := regexp.MustCompile(`redis\.p?call\(\s*['"]([A-Za-z_.|]+)['"]`)
	seen := map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n, m := len(call.FindAll(src, -1)), len(literal.FindAll(src, -1)); n != m {
			t.Errorf("%s: %d of its %d redis.call commands are not string literals", filepath.Base(f), n-m, n)
		}
		for _, m := range literal.FindAllSubmatch(src, -1) {
			cmd := strings.ToUpper(string(m[1]))
			if seen[cmd] {
				continue
			}
			seen[cmd] = true
			if !mini.Server().IsRegisteredCommand(cmd) {
				t.Errorf("%s calls %s, which the embedded Redis lacks", filepath.Base(f), cmd)
			}
		}
	}
	if !seen["BITFIELD"] || len(seen) < 10 {
		t.Fatalf("found only %v: the pattern no longer matches the scripts", seen)
	}
}
