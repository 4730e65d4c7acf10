local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local dropped = 0
for _, e in ipairs(entries) do
  if redis.call('EXISTS', 'lg:lead:' .. e[2][2]) == 0 then
    redis.call('XDEL', KEYS[1], e[1])
    dropped = dropped + 1
  end
end
if #entries == 0 then return {0, 0, ''} end
return {#entries, dropped, entries[#entries][1]}
