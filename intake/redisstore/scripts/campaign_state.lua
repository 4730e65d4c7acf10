local st = redis.call('HGET', KEYS[1], 'state')
if not st then return '' end
if ARGV[1] == 'done' and (redis.call('HGET', KEYS[1], 'retry') or '') ~= '' then return st end
for allowed in string.gmatch(ARGV[3], '[^,]+') do
  if st == allowed then
    redis.call('HSET', KEYS[1], 'state', ARGV[1])
    if ARGV[1] == 'done' or ARGV[1] == 'cancelled' then redis.call('HSET', KEYS[1], 'finished', ARGV[2]) end
    if ARGV[1] == 'sending' then redis.call('HSET', KEYS[1], 'started', ARGV[2]) end
    return st
  end
end
return st
