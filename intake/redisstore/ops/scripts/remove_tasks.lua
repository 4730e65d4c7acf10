local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('UNLINK', ARGV[2] .. id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
