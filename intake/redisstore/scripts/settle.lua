local c, failed, inflight = KEYS[1], KEYS[2], KEYS[3]
local outcome, reason, room = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- Only people still in flight are settled, each once: one erased meanwhile
-- left with their records, and one a later run already settled as lost is
-- not counted twice.
-- One HMGET and one HDEL for the batch: a call per person was most of
-- this script's time.
local people = {unpack(ARGV, 4)}
if #people == 0 then return 0 end
local found, owned, seen = redis.call('HMGET', inflight, unpack(people)), {}, {}
for i, p in ipairs(people) do
  if found[i] and not seen[p] then owned[#owned + 1] = p; seen[p] = true end
end
if #owned == 0 then return 0 end
redis.call('HDEL', inflight, unpack(owned))
if outcome == 's' then
  redis.call('HINCRBY', c, 'sent', #owned)
  return #owned
end
local fail = owned
if outcome == 'r' then
  fail = {}
  local list = redis.call('HGET', c, 'retry') or ''
  for _, p in ipairs(owned) do
    if #list + 1 + #p <= room then
      if list ~= '' then list = list .. ',' end
      list = list .. p
    else
      fail[#fail + 1] = p -- no room to keep them for a retry: given up on, and counted so
    end
  end
  redis.call('HSET', c, 'retry', list)
  reason = 'gave_up'
end
if #fail > 0 then
  local f = {}
  for _, p in ipairs(fail) do f[#f + 1] = p; f[#f + 1] = reason end
  redis.call('HSET', failed, unpack(f))
  redis.call('HINCRBY', c, 'failed', #fail)
  redis.call('HINCRBY', c, 'reason:' .. reason, #fail)
end
return #owned
