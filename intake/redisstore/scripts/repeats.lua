-- Counts a new lead's 24 h repeats (IP, person, BIN/IIN) on the counters
-- accept.lua named in its repeat_keys field, once: the field goes as the
-- counts are written. A lead without the field was counted already (or
-- at intake, before the counts moved here).
-- KEYS: 1 the lead. ARGV: 1 the window (ms).
local keys = redis.call('HGET', KEYS[1], 'repeat_keys')
if not keys then return 0 end
local n = {0, 0, 0}
local i = 0
for k in string.gmatch(keys, '%S+') do
  i = i + 1
  -- A counter new in its window is one call, as in accept.lua.
  if redis.call('SET', k, '1', 'PX', ARGV[1], 'NX') then n[i] = 1 else n[i] = redis.call('INCR', k) end
end
redis.call('HSET', KEYS[1], 'same_ip', n[1], 'same_email', n[2], 'same_tax_id', n[3])
redis.call('HDEL', KEYS[1], 'repeat_keys')
return 1
