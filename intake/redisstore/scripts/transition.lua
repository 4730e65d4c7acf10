if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', ''} end
local cur = redis.call('HGET', KEYS[1], 'state')
-- Data that left is logged even when the state moved on meanwhile (a block
-- that landed during the CRM call): the disclosure log records facts. The
-- same record again is this call re-run after its answer was lost (the
-- router retries it as it was): one transfer, logged once.
if ARGV[6] ~= '' and redis.call('LINDEX', KEYS[1] .. ':transfers', -1) ~= ARGV[6] then
  redis.call('RPUSH', KEYS[1] .. ':transfers', ARGV[6])
end
if ARGV[5] ~= '' and cur ~= ARGV[5] then return {'conflict', cur} end
for i = 3, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('ZADD', KEYS[2 + tonumber(ARGV[3])], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated', ARGV[4], unpack(ARGV, 7))
return {'ok', ARGV[2]}
