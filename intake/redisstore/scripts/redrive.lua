local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {'missing', ''} end
if cur ~= 'failed' and cur ~= 'review' then return {'conflict', cur} end
for i = 3, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'received', 'updated', ARGV[2], 'route_since', ARGV[2], 'route_error', '')
if cur == 'review' then redis.call('HSET', KEYS[1], 'released', '1') end
return {'ok', cur}
