-- A sliding-window rate limit shared by every process: KEYS[1] a zset of
-- the calls admitted in the last window (score: Redis's clock in µs).
-- ARGV[1] the most calls in any window, ARGV[2] the window (µs), ARGV[3] a
-- member unique to this call. Returns 0 when the call is admitted (and
-- recorded), else how many µs to wait before asking again. Redis's own
-- clock is used so that processes whose clocks disagree share one window.
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(tonumber(oldest[2]) + window - now, 1)
