-- The entries at or before the cutoff are the set's first n, so the batch is
-- read by rank: ZRANGEBYSCORE's LIMIT walks the entries it skips one by
-- one, and a pass skips every entry it keeps.
local first, n = tonumber(ARGV[2]), redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
local ids = first < n and redis.call('ZRANGE', KEYS[1], first, math.min(first + ARGV[3], n) - 1) or {}
if ARGV[4] == '1' or #ids == 0 then return {#ids, 0} end
local byState, people = {}, {}
for _, id in ipairs(ids) do
  local lk = 'lg:lead:' .. id
  local f = redis.call('HMGET', lk, 'person', 'phone', 'state')
  -- The lead's keys go in one UNLINK with its person's when they go too:
  -- a call fewer per lead.
  local unlink = {lk, lk .. ':transfers'}
  local st = f[3] or ''
  if not byState[st] then byState[st] = {} end
  table.insert(byState[st], id)
  if f[2] then redis.call('ZREM', 'lg:phone:' .. f[2], id) end
  if f[1] then
    local pk = 'lg:person:' .. f[1]
    redis.call('ZREM', pk .. ':leads', id)
    local gone = false
    if redis.call('EXISTS', pk .. ':leads') == 0 then
      local m = redis.call('HGET', pk, 'marketing')
      gone = m ~= 'active' and m ~= 'pending'
    end
    if gone then
      unlink[3], unlink[4], unlink[5] = pk, pk .. ':leads', pk .. ':consents'
      table.insert(people, f[1])
    else
      -- An opt-in names the lead it came with; the proof itself is sealed
      -- to the person and stays with them, but not the id of a destroyed lead.
      local ck, prefix = pk .. ':consents', id .. ' '
      for i, e in ipairs(redis.call('LRANGE', ck, 0, -1)) do
        if string.sub(e, 1, #prefix) == prefix then
          redis.call('LSET', ck, i - 1, '-' .. string.sub(e, #id + 1))
        end
      end
    end
  end
  redis.call('UNLINK', unpack(unlink))
end
redis.call('ZREM', KEYS[1], unpack(ids))
for st, list in pairs(byState) do
  -- A lead is in the index of its state; one without a state field (a
  -- leftover of a half-written lead) is taken out of every index.
  for i = 5, #KEYS do
    if st == '' or KEYS[i] == 'lg:leads:state:' .. st then redis.call('ZREM', KEYS[i], unpack(list)) end
  end
end
if #people > 0 then
  for i = 2, 4 do redis.call('ZREM', KEYS[i], unpack(people)) end
end
return {#ids, #people}
