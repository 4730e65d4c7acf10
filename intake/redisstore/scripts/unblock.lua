if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return {'missing', 0, {}} end
local now = ARGV[1]
redis.call('HDEL', KEYS[1], 'blocked')
if redis.call('HGET', KEYS[1], 'marketing') == 'active' then redis.call('ZADD', 'lg:marketing', 0, ARGV[2]) end
local restored, received = 0, {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local lk = 'lg:lead:' .. id
  if redis.call('HGET', lk, 'state') == 'blocked' then
    local prev = redis.call('HGET', lk, 'blocked_from') or 'received'
    local idx = nil
    for i = 3, #ARGV do if ARGV[i] == prev then idx = i - 2 end end
    if not idx or prev == 'blocked' then
      prev = 'received'
      for i = 3, #ARGV do if ARGV[i] == prev then idx = i - 2 end end
    end
    for i = 4, #KEYS do redis.call('ZREM', KEYS[i], id) end
    redis.call('ZADD', KEYS[3 + idx], now, id)
    redis.call('ZADD', KEYS[3], now, id)
    redis.call('HSET', lk, 'state', prev, 'updated', now)
    redis.call('HDEL', lk, 'blocked_from')
    if prev == 'received' then
      redis.call('HSET', lk, 'route_since', now)
      received[#received + 1] = id
    end
    restored = restored + 1
  end
end
return {'ok', restored, received}
