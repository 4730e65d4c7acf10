local c, marks, failed, outcome = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local get = {}
for i = 4, #ARGV, 2 do get[#get + 1] = 'GET'; get[#get + 1] = 'u1'; get[#get + 1] = ARGV[i] end
local bits = redis.call('BITFIELD', marks, unpack(get))
local settled = {}
for j, bit in ipairs(bits) do
  if bit == 1 then settled[#settled + 1] = ARGV[1 + 2 * j] end
end
if #settled == 0 then return 0 end
if outcome == 'f' then
  local f = {}
  for _, p in ipairs(settled) do f[#f + 1] = p; f[#f + 1] = 1 end
  redis.call('HSET', failed, unpack(f))
  redis.call('HINCRBY', c, 'failed', #settled)
else
  local list = redis.call('HGET', c, 'retry') or ''
  for _, p in ipairs(settled) do
    if #list < tonumber(ARGV[2]) then
      if list ~= '' then list = list .. ',' end
      list = list .. p
    end
  end
  redis.call('HSET', c, 'retry', list)
end
return #settled
