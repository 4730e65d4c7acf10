-- KEYS: 1 the person, 2 their leads, 3 lg:leads, 4.. the state indexes in
-- intake.States order, then the admission stream. ARGV: 1 now (ms), 2 the
-- person, 3.. intake.States.
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then return {'missing', 0, {}} end
local now = ARGV[1]
local states = #ARGV - 2
local admission = KEYS[4 + states]
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
    for i = 4, 3 + states do redis.call('ZREM', KEYS[i], id) end
    redis.call('ZADD', KEYS[3 + idx], now, id)
    redis.call('ZADD', KEYS[3], now, id)
    redis.call('HSET', lk, 'state', prev, 'updated', now)
    redis.call('HDEL', lk, 'blocked_from')
    -- An opt-in request queued before the block found the lead blocked and
    -- mailed nothing, and a repeat that ticked the box during it queued
    -- none; so a lead that asks for a link has it queued again (one whose
    -- link went out before sends nothing more: the task sees the logged
    -- mail). A lead back in received gets it from its route
    -- (begin_push.lua), one routed or failed from here.
    local optin = redis.call('HMGET', lk, 'asks_link', 'optin_queued')
    if prev == 'received' then
      redis.call('HSET', lk, 'route_since', now)
      if optin[2] then redis.call('HDEL', lk, 'optin_queued') end
      received[#received + 1] = id
    elseif optin[1] == '1' and (prev == 'routed' or prev == 'failed') then
      redis.call('XADD', admission, '*', 'optin', id)
    end
    restored = restored + 1
  end
end
return {'ok', restored, received}
