local id = ARGV[1]
-- A repeat was answered 202 with this lead meanwhile: keep it; it stays
-- received and is queued by that repeat or the sweeper.
if tonumber(redis.call('HGET', KEYS[1], 'claims') or '0') > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[1] .. ':transfers')
for i = 2, 5 do redis.call('ZREM', KEYS[i], id) end
if redis.call('GET', KEYS[6]) == id then redis.call('DEL', KEYS[6]) end
local idem = redis.call('GET', KEYS[7])
if idem and string.sub(idem, 1, #id + 1) == id .. ' ' then redis.call('DEL', KEYS[7]) end
if ARGV[2] ~= '' then redis.call('LREM', KEYS[8], 1, id .. ' ' .. ARGV[2]) end
return 1
