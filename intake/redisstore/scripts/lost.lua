local c, failed, inflight, reason = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local left = redis.call('HKEYS', inflight)
if #left == 0 then return 0 end
for i = 1, #left, 500 do
  local f = {}
  for j = i, math.min(i + 499, #left) do f[#f + 1] = left[j]; f[#f + 1] = reason end
  redis.call('HSET', failed, unpack(f))
end
redis.call('DEL', inflight)
redis.call('HINCRBY', c, 'failed', #left)
redis.call('HINCRBY', c, 'reason:' .. reason, #left)
return #left
