local c, marks = KEYS[1], KEYS[2]
if redis.call('HGET', c, 'state') ~= 'sending' then return {'stopped'} end
local retry = ARGV[1] == '1'
if retry then redis.call('HDEL', c, 'retry') elseif ARGV[2] ~= '' then redis.call('HSET', c, 'cursor', ARGV[2]) end
if not retry and tonumber(ARGV[3]) > 0 then redis.call('HINCRBY', c, 'recipients', ARGV[3]) end
if #ARGV < 5 then return {'batch'} end
local people, numbers = {}, {}
for i = 4, #ARGV, 2 do
  people[#people + 1] = ARGV[i]
  numbers[#numbers + 1] = ARGV[i + 1]
end
local held = redis.call('ZMSCORE', KEYS[3], unpack(people))
local set, setFor, clear, skipped = {}, {}, {}, 0
for i, p in ipairs(people) do
  if held[i] then
    set[#set + 1] = 'SET'; set[#set + 1] = 'u1'; set[#set + 1] = numbers[i]; set[#set + 1] = 1
    setFor[#setFor + 1] = p
  else
    skipped = skipped + 1
    if retry then
      clear[#clear + 1] = 'SET'; clear[#clear + 1] = 'u1'; clear[#clear + 1] = numbers[i]; clear[#clear + 1] = 0
    end
  end
end
local out = {'batch'}
if #set > 0 then
  local before = redis.call('BITFIELD', marks, unpack(set))
  for j, p in ipairs(setFor) do
    if retry or before[j] == 0 then out[#out + 1] = p end
  end
end
if #clear > 0 then redis.call('BITFIELD', marks, unpack(clear)) end
if skipped > 0 then redis.call('HINCRBY', c, 'skipped', skipped) end
return out
