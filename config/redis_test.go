package config

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// None of these tests connects: NewRedisClient only builds the client, and
// the addresses below do not resolve.

func TestNewRedisClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		url   string
		check func(*redis.Options) bool
	}{
		{"ACL user, password and DB", "redis://leadgate:s3cr3t-pass@redis.invalid:6379/2", func(o *redis.Options) bool {
			return o.Addr == "redis.invalid:6379" && o.Username == "leadgate" && o.Password == "s3cr3t-pass" && o.DB == 2 && o.TLSConfig == nil
		}},
		{"password only", "redis://:s3cr3t-pass@redis.invalid:6380", func(o *redis.Options) bool {
			return o.Addr == "redis.invalid:6380" && o.Username == "" && o.Password == "s3cr3t-pass" && o.DB == 0
		}},
		{"TLS", "rediss://default:s3cr3t-pass@redis.invalid:6380/1", func(o *redis.Options) bool {
			return o.TLSConfig != nil && o.TLSConfig.ServerName == "redis.invalid" && o.Username == "default" && o.Password == "s3cr3t-pass" && o.DB == 1
		}},
		{"unix socket, as redistest gives", "unix:///tmp/lgredis/redis.sock", func(o *redis.Options) bool {
			return o.Network == "unix" && o.Addr == "/tmp/lgredis/redis.sock"
		}},
		// A failover client's options carry this placeholder address: the
		// master is asked of the sentinels on first use.
		{"sentinel", "redis-sentinel://:s3cr3t-pass@sentinel1.invalid:26379,sentinel2.invalid:26379?master=leadgate", func(o *redis.Options) bool {
			return o.Addr == "FailoverClient"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := (&Config{Redis: Redis{URL: tt.url}}).NewRedisClient()
			if err != nil {
				t.Fatalf("NewRedisClient(%s) = %v", tt.url, err)
			}
			defer c.Close()
			client, ok := c.(*redis.Client)
			if !ok {
				t.Fatalf("NewRedisClient(%s) is a %T, want *redis.Client (asynq needs one)", tt.url, c)
			}
			if o := client.Options(); !tt.check(o) {
				t.Errorf("NewRedisClient(%s) options: addr %q network %q user %q db %d tls %t",
					tt.url, o.Addr, o.Network, o.Username, o.DB, o.TLSConfig != nil)
			}
		})
	}
}

func TestNewRedisClientRejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, url string }{
		{"empty", ""},
		{"not a URL scheme Redis knows", "http://:s3cr3t-pass@redis.invalid:6379"},
		{"DB not a number", "redis://:s3cr3t-pass@redis.invalid:6379/abc"},
		{"port not a number", "redis://:s3cr3t-pass@redis.invalid:port/0"},
		{"bad escape", "redis://:s3cr3t%zz@redis.invalid:6379"},
		{"sentinel with a bad escape", "redis-sentinel://:s3cr3t-pass@sentinel.invalid:26379%zz?master=leadgate"},
		// Without a master name the sentinels can never be asked for one: the
		// process would start and fail on its first command instead.
		{"sentinel without a master", "redis-sentinel://:s3cr3t-pass@sentinel1.invalid:26379,sentinel2.invalid:26379"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := (&Config{Redis: Redis{URL: tt.url}}).NewRedisClient()
			if err == nil {
				c.Close()
				t.Fatalf("NewRedisClient(%s) succeeded", tt.url)
			}
			if !strings.Contains(err.Error(), "REDIS_URL") {
				t.Errorf("error %q does not name REDIS_URL", err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}
