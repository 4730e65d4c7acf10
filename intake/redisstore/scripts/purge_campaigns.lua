local start = tonumber(ARGV[2])
local ids = redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[3]) - 1)
local n = 0
for _, id in ipairs(ids) do
  local ck = 'lg:campaign:' .. id
  local finished = tonumber(redis.call('HGET', ck, 'finished') or '0') or 0
  if finished > 0 and finished <= tonumber(ARGV[1]) and redis.call('EXISTS', ck .. ':marks', ck .. ':to', ck .. ':failed', ck .. ':inflight') > 0 then
    n = n + 1
    if ARGV[4] ~= '1' then redis.call('UNLINK', ck .. ':marks', ck .. ':to', ck .. ':failed', ck .. ':inflight') end
  end
end
return {#ids, n}
