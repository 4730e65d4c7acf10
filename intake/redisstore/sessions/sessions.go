// Package sessions keeps the console's sign-in sessions and counts sign-in
// attempts, in the Redis leadgate already uses. It is a package of its own
// because redisstore is near its size limit; its keys are still spelled only
// in redisstore/keys.go.
//
// A session is named by a random id of 256 bits that only the browser's
// cookie holds: Redis keeps a SHA-256 digest of it, so whoever reads a copy
// of Redis cannot take over a session. The admin token used to sign in is
// never stored: the session keeps its role and holder name.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
)

// Absolute is how long a session lasts at most from sign-in, however busy:
// a stolen cookie stops working within a day.
const Absolute = 24 * time.Hour

// Session is one signed-in person.
type Session struct {
	ID      string      // the cookie's value; never logged
	CSRF    string      // the token every state-changing form posts back
	Role    intake.Role // of the token used to sign in
	Name    string      // the token's holder, as the audit log names them
	Created time.Time
	Seen    time.Time // the last request made with it
}

// CheckCSRF reports, in constant time, whether got is this session's token.
func (s *Session) CheckCSRF(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

// Store keeps sessions in Redis.
type Store struct {
	rdb  redis.UniversalClient
	idle time.Duration
	now  func() time.Time
}

// New returns a store whose sessions end after idle without a request (and
// after Absolute in any case). now is the clock: expiry is decided by it,
// not only by Redis's TTL, so tests can move time on.
func New(rdb redis.UniversalClient, idle time.Duration, now func() time.Time) *Store {
	return &Store{rdb: rdb, idle: idle, now: now}
}

// ErrNoSession is a cookie that opens nothing: unknown, ended or expired.
var ErrNoSession = errors.New("sessions: no such session")

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// key is the Redis key of id: named by its digest.
func key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return redisstore.SessionKey(hex.EncodeToString(sum[:]))
}

// ttl is how long Redis should keep a session seen at now: the idle limit,
// or less when the absolute limit comes first.
func (s *Store) ttl(created, now time.Time) time.Duration {
	return min(s.idle, created.Add(Absolute).Sub(now))
}

// Create starts a session for the holder of a token.
func (s *Store) Create(ctx context.Context, role intake.Role, name string) (*Session, error) {
	now := s.now()
	ss := &Session{ID: randomToken(), CSRF: randomToken(), Role: role, Name: name, Created: now, Seen: now}
	k := key(ss.ID)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "role", string(role), "name", name, "csrf", ss.CSRF,
			"created", now.UnixMilli(), "seen", now.UnixMilli())
		p.PExpire(ctx, k, s.ttl(now, now))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: create: %w", err)
	}
	return ss, nil
}

// Get returns the session of id and counts this as its use, which moves its
// idle limit on. A session past its idle or absolute limit is removed and
// is ErrNoSession, as an unknown id is.
func (s *Store) Get(ctx context.Context, id string) (*Session, error) {
	if id == "" {
		return nil, ErrNoSession
	}
	k := key(id)
	f, err := s.rdb.HGetAll(ctx, k).Result()
	if err != nil {
		return nil, fmt.Errorf("sessions: get: %w", err)
	}
	if f["csrf"] == "" {
		return nil, ErrNoSession
	}
	ss := &Session{ID: id, CSRF: f["csrf"], Role: intake.Role(f["role"]), Name: f["name"],
		Created: msTime(f["created"]), Seen: msTime(f["seen"])}
	now := s.now()
	if now.Sub(ss.Seen) >= s.idle || now.Sub(ss.Created) >= Absolute {
		if err := s.rdb.Del(ctx, k).Err(); err != nil {
			return nil, fmt.Errorf("sessions: remove an expired session: %w", err)
		}
		return nil, ErrNoSession
	}
	ss.Seen = now
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "seen", now.UnixMilli())
		p.PExpire(ctx, k, s.ttl(ss.Created, now))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sessions: touch: %w", err)
	}
	return ss, nil
}

// Delete ends the session of id on the server: its cookie opens nothing
// after, wherever a copy of it is.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, key(id)).Err(); err != nil {
		return fmt.Errorf("sessions: delete: %w", err)
	}
	return nil
}

// AllowLogin counts one sign-in attempt from client (a keyed hash of its
// address, never the address) and reports whether it is within limit.
func (s *Store) AllowLogin(ctx context.Context, client string, limit intake.Limit) (bool, error) {
	k := redisstore.LoginAttemptsKey(client)
	n, err := s.rdb.Incr(ctx, k).Result()
	if err != nil {
		return false, fmt.Errorf("sessions: count a sign-in attempt: %w", err)
	}
	if n == 1 {
		// The window starts at the first attempt and later ones do not
		// move it on. A crash before this leaves a counter without a TTL,
		// which the purge removes (keys.go lists it as short-lived).
		if err := s.rdb.PExpire(ctx, k, limit.Per).Err(); err != nil {
			return false, fmt.Errorf("sessions: start a sign-in window: %w", err)
		}
	}
	return n <= int64(limit.N), nil
}

func msTime(v string) time.Time {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// handleField is the session hash's field that binds a handle to a person.
func handleField(handle string) string { return "handle:" + handle }

// bindScript sets a handle's field only while the session exists, so that
// a session ended meanwhile is not brought back as a hash without expiry.
var bindScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'csrf') == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`)

// Bind names person (a person hash) within the session id by a new random
// handle, which the console puts in its URLs instead of the hash or an
// address. The binding lives in the session's own record: it means
// nothing to another session and ends with this one.
func (s *Store) Bind(ctx context.Context, id, person string) (string, error) {
	handle := randomToken()
	n, err := bindScript.Run(ctx, s.rdb, []string{key(id)}, handleField(handle), person).Int()
	if err != nil {
		return "", fmt.Errorf("sessions: bind a handle: %w", err)
	}
	if n == 0 {
		return "", ErrNoSession
	}
	return handle, nil
}

// Bound returns the person a handle of the session id names;
// ErrNoHandle when the session bound no such handle.
func (s *Store) Bound(ctx context.Context, id, handle string) (string, error) {
	if handle == "" {
		return "", ErrNoHandle
	}
	person, err := s.rdb.HGet(ctx, key(id), handleField(handle)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", ErrNoHandle
	case err != nil:
		return "", fmt.Errorf("sessions: read a handle: %w", err)
	}
	return person, nil
}

// ErrNoHandle is Bound's answer for a handle its session never bound.
var ErrNoHandle = errors.New("sessions: no such handle in this session")
