local c, marks, inflight = KEYS[1], KEYS[2], KEYS[4]
if redis.call('HGET', c, 'state') ~= 'sending' then return {'stopped'} end
local retry = ARGV[1] == '1'
local n = tonumber(ARGV[3])
local people, numbers = {}, {}
for i = 4 + n, #ARGV, 2 do
  people[#people + 1] = ARGV[i]
  numbers[#numbers + 1] = ARGV[i + 1]
end
-- take[i]: this call decides candidate i's outcome. Anyone else was dealt
-- with before (already marked by an earlier batch, or no longer waiting on
-- the retry list) and is neither counted nor sent to again.
local take, counted, skipped = {}, 0, 0
if retry then
  local waiting, chunk, keep = {}, {}, {}
  for i = 4, 3 + n do chunk[ARGV[i]] = true end
  for p in string.gmatch(redis.call('HGET', c, 'retry') or '', '[^,]+') do
    if chunk[p] then waiting[p] = true else keep[#keep + 1] = p end
  end
  redis.call('HSET', c, 'retry', table.concat(keep, ','))
  local read = {}
  for i, p in ipairs(people) do
    read[p] = true
    if waiting[p] then take[i] = true end
  end
  -- Waiting but not read: no longer held at all. Counted as recipients
  -- when first marked, so now skipped.
  for p in pairs(waiting) do
    if not read[p] then skipped = skipped + 1 end
  end
else
  if ARGV[2] ~= '' then redis.call('HSET', c, 'cursor', ARGV[2]) end
  if #people > 0 then
    local get = {}
    for _, num in ipairs(numbers) do get[#get + 1] = 'GET'; get[#get + 1] = 'u1'; get[#get + 1] = num end
    local bits = redis.call('BITFIELD', marks, unpack(get))
    for i = 1, #people do
      if bits[i] == 0 then take[i] = true; counted = counted + 1 end
    end
  end
end
local out = {'batch'}
if #people > 0 then
  local held = redis.call('ZMSCORE', KEYS[3], unpack(people))
  local set, clear, flight = {}, {}, {}
  for i, p in ipairs(people) do
    if take[i] then
      if held[i] then
        set[#set + 1] = 'SET'; set[#set + 1] = 'u1'; set[#set + 1] = numbers[i]; set[#set + 1] = 1
        flight[#flight + 1] = p; flight[#flight + 1] = numbers[i]
        out[#out + 1] = p
      else
        skipped = skipped + 1
        if retry then
          clear[#clear + 1] = 'SET'; clear[#clear + 1] = 'u1'; clear[#clear + 1] = numbers[i]; clear[#clear + 1] = 0
        end
      end
    end
  end
  if #set > 0 then redis.call('BITFIELD', marks, unpack(set)) end
  if #clear > 0 then redis.call('BITFIELD', marks, unpack(clear)) end
  if #flight > 0 then redis.call('HSET', inflight, unpack(flight)) end
end
if counted > 0 then redis.call('HINCRBY', c, 'recipients', counted) end
if skipped > 0 then redis.call('HINCRBY', c, 'skipped', skipped) end
return out
