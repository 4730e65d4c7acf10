local c = KEYS[1]
local st = redis.call('HGET', c, 'state')
if not st then return '' end
if st ~= 'sending' then return st end
if (redis.call('HGET', c, 'retry') or '') ~= '' or redis.call('EXISTS', KEYS[2]) == 1 then return st end
local h = redis.call('HMGET', c, 'recipients', 'sent', 'skipped', 'failed')
local rest = (tonumber(h[1]) or 0) - (tonumber(h[2]) or 0) - (tonumber(h[3]) or 0) - (tonumber(h[4]) or 0)
-- Counted, then erased before their outcome was recorded: erasure takes a
-- person off the retry list and out of flight and leaves nothing to count
-- by. No longer held when their turn came is what skipped means.
if rest > 0 then redis.call('HINCRBY', c, 'skipped', rest) end
redis.call('HSET', c, 'state', 'done', 'finished', ARGV[1])
return st
