package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// NewRedisClient builds the one Redis client a process shares with asynq from
// REDIS_URL: redis:// and rediss:// through go-redis (which keeps the ACL
// username), redis-sentinel:// through asynq's parser. It does not connect.
func (c *Config) NewRedisClient() (redis.UniversalClient, error) {
	switch {
	case c.Redis.URL == "":
		return nil, errors.New("REDIS_URL is empty")
	case strings.HasPrefix(c.Redis.URL, "redis-sentinel://"):
		opt, err := asynq.ParseRedisURI(c.Redis.URL)
		if err != nil {
			return nil, errors.New("REDIS_URL: not a valid redis-sentinel:// URL") // the URL may hold a password
		}
		if fo, ok := opt.(asynq.RedisFailoverClientOpt); !ok || fo.MasterName == "" {
			return nil, errors.New("REDIS_URL: a redis-sentinel:// URL needs ?master=name")
		}
		made := opt.MakeRedisClient()
		client, ok := made.(redis.UniversalClient)
		if !ok {
			return nil, fmt.Errorf("REDIS_URL: unexpected client type %T", made)
		}
		return client, nil
	default:
		opt, err := redis.ParseURL(c.Redis.URL)
		if err != nil {
			return nil, errors.New("REDIS_URL: not a valid redis:// or rediss:// URL")
		}
		return redis.NewClient(opt), nil
	}
}
