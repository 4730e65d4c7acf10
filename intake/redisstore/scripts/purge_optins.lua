-- Read by rank, as purge_leads.lua reads its batch.
local first, n = tonumber(ARGV[2]), redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
local people = first < n and redis.call('ZRANGE', KEYS[1], first, math.min(first + ARGV[3], n) - 1) or {}
if ARGV[4] == '1' then return #people end
for _, p in ipairs(people) do
  redis.call('ZREM', KEYS[1], p)
  local pk = 'lg:person:' .. p
  if redis.call('HGET', pk, 'marketing') == 'pending' then redis.call('HDEL', pk, 'marketing', 'marketing_at') end
end
return #people
