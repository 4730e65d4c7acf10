local c, failed, inflight, reason = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
-- Each entry is a batch (mark.lua): the people of its slots still '1'. An
-- entry without a space was written before batches were one entry: the
-- field is a person.
local left, kv = {}, redis.call('HGETALL', inflight)
for k = 1, #kv, 2 do
  local entry = kv[k + 1]
  local sep = string.find(entry, ' ', 1, true)
  if not sep then
    left[#left + 1] = kv[k]
  else
    local i = 0
    for p in string.gmatch(string.sub(entry, sep + 1), '[^,]+') do
      i = i + 1
      if string.byte(entry, i) == 49 then left[#left + 1] = p end
    end
  end
end
redis.call('DEL', inflight)
if #left == 0 then return 0 end
for i = 1, #left, 500 do
  local f = {}
  for j = i, math.min(i + 499, #left) do f[#f + 1] = left[j]; f[#f + 1] = reason end
  redis.call('HSET', failed, unpack(f))
end
redis.call('HINCRBY', c, 'failed', #left)
redis.call('HINCRBY', c, 'reason:' .. reason, #left)
return #left
