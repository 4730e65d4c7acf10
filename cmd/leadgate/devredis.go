package main

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// startDevRedis starts the embedded in-memory Redis of the development setup
// (serve without REDIS_URL): miniredis, taught the commands leadgate's Lua
// scripts use that miniredis does not have. Without them a script stops with
// "Unknown Redis command called from script" and, for a campaign, nobody is
// ever sent to. The scripts stay as they are: real Redis runs them unchanged.
//
// Only BITFIELD is missing (miniredis v2.40.0): mark.lua reads and sets a
// campaign's per-person marks with it, one call for a whole batch.
func startDevRedis() (*miniredis.Miniredis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, err
	}
	// Registered before anyone connects: the caller's client is made after.
	if err := m.Server().Register("BITFIELD", (&bitfield{srv: m.Server()}).serve); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// bitfield is Redis's BITFIELD (GET, SET, INCRBY, OVERFLOW WRAP|SAT|FAIL)
// for miniredis, ported from Redis's bitops.c so that replies, errors and
// the bits written are the same.
//
// A registered command cannot reach miniredis's keys directly, so it works
// through commands miniredis has: GET the string, compute, SETRANGE it back
// (which keeps the key's TTL, as BITFIELD does). Those steps are one atomic
// step only inside a script, where miniredis holds its lock for the whole
// script — and scripts are where leadgate sends BITFIELD. Straight from a
// client they would not be, so there it is refused rather than run racily.
// (Nor does it work inside MULTI: miniredis queues only its own commands.)
type bitfield struct{ srv *server.Server }

// errBitfieldOutsideScript refuses a BITFIELD sent by a client.
const errBitfieldOutsideScript = "ERR the embedded Redis runs BITFIELD only from a script (leadgate's scripts)"

// notAScript is the SHA1 of no script: EVALSHA of it, refused at once
// inside a script and NOSCRIPT outside, tells which of the two a call is.
const notAScript = "0000000000000000000000000000000000000000"

// bitfieldOp is one GET, SET or INCRBY of a BITFIELD call.
type bitfieldOp struct {
	op       string // "GET", "SET" or "INCRBY"
	signed   bool
	bits     uint
	offset   uint64 // in bits, from the first byte's most significant bit
	value    int64  // SET's value or INCRBY's increment
	overflow string // "WRAP", "SAT" or "FAIL": the OVERFLOW in force
}

// redisError is an error reply worded exactly as Redis words it.
type redisError string

func (e redisError) Error() string { return string(e) }

// BITFIELD's error replies.
const (
	errSyntax       redisError = "ERR syntax error"
	errOverflowType redisError = "ERR Invalid OVERFLOW type specified"
	errBitfieldType redisError = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
	errBitOffset    redisError = "ERR bit offset is not an integer or out of range"
	errNotInteger   redisError = "ERR value is not an integer or out of range"
)

// maxBitfieldBytes is Redis's proto-max-bulk-len default (512 MB): the
// largest string a bit offset may reach.
const maxBitfieldBytes = 512 << 20

// serve answers BITFIELD key [GET|SET|INCRBY|OVERFLOW …] from a script; it
// first asks miniredis whether the call is inside one.
func (b *bitfield) serve(c *server.Peer, _ string, args []string) {
	if len(args) < 1 {
		c.WriteError("ERR wrong number of arguments for 'bitfield' command")
		return
	}
	if _, err := b.call(c, "EVALSHA", notAScript, "0"); err == nil || !strings.Contains(err.Error(), "not allowed from script") {
		c.WriteError(errBitfieldOutsideScript)
		return
	}
	key := args[0]
	ops, err := parseBitfield(args[1:])
	if err != nil {
		c.WriteError(err.Error())
		return
	}
	v, err := b.call(c, "GET", key) // WRONGTYPE for a key that is not a string
	if err != nil {
		c.WriteError(err.Error())
		return
	}
	s, _ := v.(string) // nil: no key, every bit is 0
	replies, write := runBitfield([]byte(s), ops)
	if write != nil {
		if _, err := b.call(c, "SETRANGE", key, "0", string(write)); err != nil {
			c.WriteError(err.Error()) // cannot happen once GET succeeded: same key, same lock
			return
		}
	}
	c.WriteLen(len(replies))
	for _, r := range replies {
		if r == nil {
			c.WriteNull()
		} else {
			c.WriteInt(int(r.(int64)))
		}
	}
}

// call runs one command on the caller's connection state (its database, and
// whether it is inside a script) and returns its reply.
func (b *bitfield) call(c *server.Peer, args ...string) (any, error) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	p := server.NewPeer(w)
	p.Ctx = c.Ctx
	b.srv.Dispatch(p, args)
	w.Flush()
	return server.ParseReply(bufio.NewReader(&out))
}

// runBitfield applies ops to the string s (empty when there is no key). It
// returns a reply for each op, an int64 or nil (OVERFLOW FAIL refused the
// write), and the string to store, or nil when only GETs ran and nothing is
// written.
func runBitfield(s []byte, ops []bitfieldOp) (replies []any, write []byte) {
	var end uint64 // bytes the writes reach: Redis grows the string to it before any op
	for _, op := range ops {
		if op.op != "GET" {
			end = max(end, (op.offset+uint64(op.bits)-1)/8+1)
		}
	}
	buf := s
	if end > 0 {
		buf = make([]byte, max(uint64(len(s)), end))
		copy(buf, s)
	}
	replies = make([]any, len(ops))
	for i, op := range ops {
		if v, ok := op.apply(buf); ok {
			replies[i] = v
		}
	}
	if end > 0 {
		return replies, buf
	}
	return replies, nil
}

// parseBitfield reads BITFIELD's subcommands, failing on the first bad one
// with Redis's message before anything is read or written.
func parseBitfield(args []string) ([]bitfieldOp, error) {
	var ops []bitfieldOp
	overflow := "WRAP"
	for j := 0; j < len(args); {
		sub := strings.ToUpper(args[j])
		rest := len(args) - j - 1
		switch {
		case sub == "OVERFLOW" && rest >= 1:
			overflow = strings.ToUpper(args[j+1])
			if overflow != "WRAP" && overflow != "SAT" && overflow != "FAIL" {
				return nil, errOverflowType
			}
			j += 2
			continue
		case sub == "GET" && rest >= 2, (sub == "SET" || sub == "INCRBY") && rest >= 3:
		default:
			return nil, errSyntax
		}
		op := bitfieldOp{op: sub, overflow: overflow}
		var err error
		if op.signed, op.bits, err = parseBitfieldType(args[j+1]); err != nil {
			return nil, err
		}
		if op.offset, err = parseBitfieldOffset(args[j+2], op.bits); err != nil {
			return nil, err
		}
		j += 3
		if sub != "GET" {
			var ok bool
			if op.value, ok = redisInt(args[j]); !ok {
				return nil, errNotInteger
			}
			j++
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// parseBitfieldType reads i1…i64 or u1…u63.
func parseBitfieldType(s string) (signed bool, bits uint, err error) {
	if s == "" {
		return false, 0, errBitfieldType
	}
	signed = s[0] == 'i' // lower case only, as Redis
	if !signed && s[0] != 'u' {
		return false, 0, errBitfieldType
	}
	n, ok := redisInt(s[1:])
	if !ok || n < 1 || n > 64 || (!signed && n > 63) {
		return false, 0, errBitfieldType
	}
	return signed, uint(n), nil
}

// parseBitfieldOffset reads a bit offset, or #N: the N-th field of this width.
func parseBitfieldOffset(s string, bits uint) (uint64, error) {
	field := strings.HasPrefix(s, "#")
	n, ok := redisInt(strings.TrimPrefix(s, "#"))
	if !ok || n < 0 || n >= maxBitfieldBytes*8 {
		return 0, errBitOffset
	}
	if field {
		if n *= int64(bits); n>>3 >= maxBitfieldBytes {
			return 0, errBitOffset
		}
	}
	return uint64(n), nil
}

// redisInt reads a 64-bit integer as Redis does: an optional minus, then no
// leading zeros and no plus sign, which strconv alone would accept.
func redisInt(s string) (int64, bool) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] < '0' || digits[0] > '9' || (digits[0] == '0' && len(s) > 1) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// apply runs op on buf, which is long enough for every write. It returns
// the reply (GET: the value; SET: the old value; INCRBY: the new one), or
// false when OVERFLOW FAIL refused the write.
func (op bitfieldOp) apply(buf []byte) (int64, bool) {
	raw := getBits(buf, op.offset, op.bits)
	if !op.signed {
		old := raw
		switch op.op {
		case "GET":
			return int64(old), true
		case "SET":
			v, over := unsignedOverflow(uint64(op.value), 0, op.bits, op.overflow)
			if over && op.overflow == "FAIL" {
				return 0, false
			}
			setBits(buf, op.offset, op.bits, v)
			return int64(old), true
		default:
			v, over := unsignedOverflow(old, op.value, op.bits, op.overflow)
			if over && op.overflow == "FAIL" {
				return 0, false
			}
			setBits(buf, op.offset, op.bits, v)
			return int64(v), true
		}
	}
	old := signExtend(raw, op.bits)
	switch op.op {
	case "GET":
		return old, true
	case "SET":
		v, over := signedOverflow(op.value, 0, op.bits, op.overflow)
		if over && op.overflow == "FAIL" {
			return 0, false
		}
		setBits(buf, op.offset, op.bits, uint64(v))
		return old, true
	default:
		v, over := signedOverflow(old, op.value, op.bits, op.overflow)
		if over && op.overflow == "FAIL" {
			return 0, false
		}
		setBits(buf, op.offset, op.bits, uint64(v))
		return v, true
	}
}

// unsignedOverflow is value+incr in a bits-wide unsigned field, and whether
// that overflowed (then wrapped or saturated as overflow says). As in
// Redis, a SET's value (incr 0) is taken as unsigned, so -1 overflows.
func unsignedOverflow(value uint64, incr int64, bits uint, overflow string) (uint64, bool) {
	maxv := uint64(1)<<bits - 1
	maxincr := int64(maxv - value)
	minincr := -int64(value)
	switch {
	case value > maxv || (incr > 0 && incr > maxincr):
		if overflow == "SAT" {
			return maxv, true
		}
	case incr < 0 && incr < minincr:
		if overflow == "SAT" {
			return 0, true
		}
	default:
		return value + uint64(incr), false
	}
	return (value + uint64(incr)) &^ (^uint64(0) << bits), true
}

// signedOverflow is value+incr in a bits-wide two's-complement field, and
// whether that overflowed (then wrapped or saturated as overflow says).
func signedOverflow(value, incr int64, bits uint, overflow string) (int64, bool) {
	maxv := int64(1)<<(bits-1) - 1
	if bits == 64 {
		maxv = 1<<63 - 1
	}
	minv := -maxv - 1
	// They may wrap around; they are only used once value is in range,
	// and then they do not (Redis computes them the same way).
	maxincr := int64(uint64(maxv) - uint64(value))
	minincr := minv - value
	switch {
	case value > maxv || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr):
		if overflow == "SAT" {
			return maxv, true
		}
	case value < minv || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr):
		if overflow == "SAT" {
			return minv, true
		}
	default:
		return value + incr, false
	}
	return signExtend(uint64(value)+uint64(incr), bits), true
}

// signExtend reads the low bits of v as a two's-complement number.
func signExtend(v uint64, bits uint) int64 {
	if bits < 64 {
		if v&(1<<(bits-1)) != 0 {
			v |= ^uint64(0) << bits
		} else {
			v &^= ^uint64(0) << bits
		}
	}
	return int64(v)
}

// getBits reads the bits-wide field at offset, most significant bit first
// (bit 0 is the top bit of byte 0, as for GETBIT). Past the end is zeros.
func getBits(buf []byte, offset uint64, bits uint) uint64 {
	var v uint64
	for i := range uint64(bits) {
		at := offset + i
		v <<= 1
		if at/8 < uint64(len(buf)) && buf[at/8]&(0x80>>(at%8)) != 0 {
			v |= 1
		}
	}
	return v
}

// setBits writes the low bits of v to the field at offset; buf is long enough.
func setBits(buf []byte, offset uint64, bits uint, v uint64) {
	for i := range uint64(bits) {
		at := offset + i
		if v&(1<<(uint64(bits)-1-i)) != 0 {
			buf[at/8] |= 0x80 >> (at % 8)
		} else {
			buf[at/8] &^= 0x80 >> (at % 8)
		}
	}
}
