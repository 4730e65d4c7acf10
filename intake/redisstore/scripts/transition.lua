-- KEYS: 1 the lead, 2 lg:leads, 3 the admission stream, 4.. the state
-- indexes in intake.States order. ARGV: 1 id, 2 the new state, 3 its index
-- in intake.States (1-based), 4 now (ms), 5 the state required ('' for
-- any), 6 a transfer to log ('' for none), 7 '1' to queue the opt-in
-- request of a lead that asks for a link, 8.. fields to set.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', ''} end
local lead = redis.call('HMGET', KEYS[1], 'state', 'asks_link', 'optin_queued')
local cur = lead[1]
-- Data that left is logged even when the state moved on meanwhile (a block
-- that landed during the CRM call): the disclosure log records facts. The
-- same record again is this call re-run after its answer was lost (the
-- router retries it as it was), even with another transfer logged
-- between: one transfer, logged once.
if ARGV[6] ~= '' and not redis.call('LPOS', KEYS[1] .. ':transfers', ARGV[6]) then
  redis.call('RPUSH', KEYS[1] .. ':transfers', ARGV[6])
end
if ARGV[5] ~= '' and cur ~= ARGV[5] then return {'conflict', cur} end
for i = 4, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('ZADD', KEYS[3 + tonumber(ARGV[3])], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated', ARGV[4], unpack(ARGV, 8))
-- The entry accept.lua writes for a repeat's opt-in, unless the push mark
-- queued it (begin_push.lua). asks_link is read in this step, so a repeat
-- that set it while the lead was still received is seen here, and one
-- arriving later finds the lead moved on and queues its own entry.
if ARGV[7] == '1' and lead[2] == '1' and not lead[3] then
  redis.call('XADD', KEYS[3], '*', 'optin', ARGV[1])
  redis.call('HSET', KEYS[1], 'optin_queued', '1')
end
return {'ok', ARGV[2]}
