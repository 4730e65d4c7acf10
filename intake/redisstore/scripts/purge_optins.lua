local people = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', ARGV[2], ARGV[3])
if ARGV[4] == '1' then return #people end
for _, p in ipairs(people) do
  redis.call('ZREM', KEYS[1], p)
  local pk = 'lg:person:' .. p
  if redis.call('HGET', pk, 'marketing') == 'pending' then redis.call('HDEL', pk, 'marketing', 'marketing_at') end
end
return #people
