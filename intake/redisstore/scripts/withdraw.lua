if ARGV[4] ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[4]) end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local m = redis.call('HGET', KEYS[1], 'marketing')
if m ~= 'active' and m ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'marketing', 'withdrawn', 'marketing_at', ARGV[2])
redis.call('RPUSH', KEYS[2], '- ' .. ARGV[3])
return 1
