local m = redis.call('HGET', KEYS[1], 'marketing')
if m == 'active' then return 'already' end
if m ~= 'pending' then return 'none' end
redis.call('HSET', KEYS[1], 'marketing', 'active', 'marketing_at', ARGV[1], 'confirmed_at', ARGV[1])
redis.call('RPUSH', KEYS[2], '- ' .. ARGV[2])
-- A blocked person's consent counts from now, but campaigns reach them
-- only once the block is lifted (unblock puts them in the index).
if redis.call('HGET', KEYS[1], 'blocked') ~= '1' then redis.call('ZADD', KEYS[3], 0, ARGV[3]) end
redis.call('ZREM', KEYS[4], ARGV[3])
redis.call('HDEL', KEYS[5], ARGV[3])
return 'confirmed'
