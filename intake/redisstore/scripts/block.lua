if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return {'missing', {}} end
local now, target = ARGV[1], KEYS[tonumber(ARGV[2])]
redis.call('HSET', KEYS[1], 'blocked', '1')
redis.call('ZREM', 'lg:marketing', ARGV[3]) -- no campaign reaches them from now
local moved = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local lk = 'lg:lead:' .. id
  local cur = redis.call('HGET', lk, 'state')
  if cur and cur ~= 'blocked' then
    for i = 4, #KEYS do redis.call('ZREM', KEYS[i], id) end
    redis.call('ZADD', target, now, id)
    redis.call('ZADD', KEYS[3], now, id)
    redis.call('HSET', lk, 'state', 'blocked', 'blocked_from', cur, 'updated', now)
    moved[#moved + 1] = id
  end
end
return {'ok', moved}
