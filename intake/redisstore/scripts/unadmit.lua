-- KEYS: 1 the admission stream. ARGV: ids of leads destroyed.
-- The workers drain the stream as it fills, so reading it whole is cheap;
-- with them stopped it holds only what they have yet to queue.
local gone = {}
for _, id in ipairs(ARGV) do gone[id] = true end
local n = 0
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  if gone[e[2][2]] then
    redis.call('XDEL', KEYS[1], e[1])
    n = n + 1
  end
end
return n
