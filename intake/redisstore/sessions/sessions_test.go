package sessions

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paymtech/leadgate/config/redistest"
	"github.com/paymtech/leadgate/intake"
	"github.com/paymtech/leadgate/intake/redisstore"
)

// clock is a test clock the tests move on by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newStore(t *testing.T, idle time.Duration) (*Store, *clock) {
	t.Helper()
	c := &clock{t: time.Now()}
	return New(redistest.Start(t).Client(t), idle, c.now), c
}

func TestSessionHoldsRoleNameNotToken(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 8*time.Hour)
	ctx := context.Background()
	ss, err := s.Create(ctx, intake.RoleSales, "Test Salesperson")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss.ID) < 22 || len(ss.CSRF) < 22 || ss.ID == ss.CSRF { // 22 base64 characters are 128 bits
		t.Fatalf("session id and csrf are too short or equal")
	}
	got, err := s.Get(ctx, ss.ID)
	if err != nil || got.Role != intake.RoleSales || got.Name != "Test Salesperson" || got.CSRF != ss.CSRF {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if !got.CheckCSRF(ss.CSRF) || got.CheckCSRF("") || got.CheckCSRF(ss.ID) {
		t.Error("CheckCSRF accepts the wrong token or refuses the right one")
	}
	// Redis keeps a digest of the id, never the id itself.
	keys, err := s.rdb.Keys(ctx, "*").Result()
	if err != nil || len(keys) != 1 || strings.Contains(keys[0], ss.ID) {
		t.Fatalf("keys = %v, %v: want one, not naming the id", keys, err)
	}
	if _, err := s.Get(ctx, "not-a-session"); !errors.Is(err, ErrNoSession) {
		t.Errorf("Get(unknown) = %v, want ErrNoSession", err)
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	t.Parallel()
	s, c := newStore(t, time.Hour)
	ctx := context.Background()
	ss, err := s.Create(ctx, intake.RoleSales, "Test Salesperson")
	if err != nil {
		t.Fatal(err)
	}
	// Used every 50 minutes, the session lives past its first hour.
	for range 3 {
		c.add(50 * time.Minute)
		if _, err := s.Get(ctx, ss.ID); err != nil {
			t.Fatalf("a session used within its idle limit: %v", err)
		}
	}
	c.add(time.Hour)
	if _, err := s.Get(ctx, ss.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after an idle hour Get = %v, want ErrNoSession", err)
	}
	if n, _ := s.rdb.Exists(ctx, key(ss.ID)).Result(); n != 0 {
		t.Error("the expired session is still in Redis")
	}
}

func TestSessionAbsoluteExpiry(t *testing.T) {
	t.Parallel()
	s, c := newStore(t, 8*time.Hour)
	ctx := context.Background()
	ss, err := s.Create(ctx, intake.RoleAdmin, "Test Admin")
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // used every 4 hours: 20 hours in
		c.add(4 * time.Hour)
		if _, err := s.Get(ctx, ss.ID); err != nil {
			t.Fatalf("a busy session within 24 h: %v", err)
		}
	}
	// Redis would drop it at the absolute limit too, not 8 h later.
	if ttl, _ := s.rdb.PTTL(ctx, key(ss.ID)).Result(); ttl > 4*time.Hour+time.Second {
		t.Errorf("TTL 20 h in = %v, want at most the 4 h left", ttl)
	}
	c.add(4 * time.Hour)
	if _, err := s.Get(ctx, ss.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("24 h after sign-in Get = %v, want ErrNoSession", err)
	}
}

func TestSessionDelete(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, time.Hour)
	ctx := context.Background()
	ss, _ := s.Create(ctx, intake.RoleSales, "Test Salesperson")
	if err := s.Delete(ctx, ss.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, ss.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after Delete Get = %v, want ErrNoSession", err)
	}
}

func TestAllowLogin(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, time.Hour)
	ctx := context.Background()
	limit := intake.Limit{N: 3, Per: time.Minute}
	for i := 1; i <= 4; i++ {
		ok, err := s.AllowLogin(ctx, "client-a", limit)
		if err != nil {
			t.Fatal(err)
		}
		if want := i <= 3; ok != want {
			t.Fatalf("attempt %d allowed = %v, want %v", i, ok, want)
		}
	}
	if ok, _ := s.AllowLogin(ctx, "client-b", limit); !ok {
		t.Error("another client is refused")
	}
	if ttl, _ := s.rdb.PTTL(ctx, redisstore.LoginAttemptsKey("client-a")).Result(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("window TTL = %v, want up to a minute", ttl)
	}
}

func TestHandlesBoundToTheirSession(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, 8*time.Hour)
	ctx := context.Background()
	a, err := s.Create(ctx, intake.RolePrivacy, "Test Officer")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, intake.RolePrivacy, "Test Officer")
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Bind(ctx, a.ID, "person-hash")
	if err != nil || len(h) < 22 || strings.Contains(h, "person-hash") {
		t.Fatalf("Bind = %q, %v", h, err)
	}
	if p, err := s.Bound(ctx, a.ID, h); err != nil || p != "person-hash" {
		t.Errorf("Bound(own) = %q, %v", p, err)
	}
	if _, err := s.Bound(ctx, b.ID, h); !errors.Is(err, ErrNoHandle) {
		t.Errorf("Bound(another session's handle) = %v, want ErrNoHandle", err)
	}
	if got, err := s.Get(ctx, a.ID); err != nil || got.CSRF != a.CSRF {
		t.Errorf("the session after Bind = %+v, %v", got, err)
	}
	if err := s.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bind(ctx, a.ID, "person-hash"); !errors.Is(err, ErrNoSession) {
		t.Errorf("Bind after sign-out = %v, want ErrNoSession", err)
	}
	if n, _ := s.rdb.Exists(ctx, key(a.ID)).Result(); n != 0 {
		t.Error("Bind brought an ended session's record back")
	}
}
