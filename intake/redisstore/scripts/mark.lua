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
end
local held = {}
if #people > 0 then held = redis.call('ZMSCORE', KEYS[3], unpack(people)) end
-- A walk reads and sets the marks in one BITFIELD: SET marks a held person
-- and answers the bit it replaced (1: an earlier batch marked them), GET
-- reads the bit of one no longer held.
if not retry then
  if ARGV[2] ~= '' then redis.call('HSET', c, 'cursor', ARGV[2]) end
  if #people > 0 then
    -- Bits as strings: a Lua number is formatted with sprintf each time.
    local ops = {}
    for i, num in ipairs(numbers) do
      if held[i] then
        ops[#ops + 1] = 'SET'; ops[#ops + 1] = 'u1'; ops[#ops + 1] = num; ops[#ops + 1] = '1'
      else
        ops[#ops + 1] = 'GET'; ops[#ops + 1] = 'u1'; ops[#ops + 1] = num
      end
    end
    local bits = redis.call('BITFIELD', marks, unpack(ops))
    for i = 1, #people do
      if bits[i] == 0 then take[i] = true; counted = counted + 1 end
    end
  end
end
-- In flight is one entry a batch, not a field a person (a thousand fields
-- written here and deleted by the settle were a fifth of this script):
-- a byte a slot, '1' while that person waits for their outcome, then a
-- space and the people, comma-separated, in the order they are answered.
-- The answer is the batch's name in flight and a byte a candidate, '1'
-- for those marked now.
local flight, taken = {}, {}
if #people > 0 then
  local set, clear = {}, {}
  for i, p in ipairs(people) do
    taken[i] = '0'
    if take[i] then
      if held[i] then
        if retry then -- a walk set it above
          set[#set + 1] = 'SET'; set[#set + 1] = 'u1'; set[#set + 1] = numbers[i]; set[#set + 1] = '1'
        end
        flight[#flight + 1] = p
        taken[i] = '1'
      else
        skipped = skipped + 1
        if retry then
          clear[#clear + 1] = 'SET'; clear[#clear + 1] = 'u1'; clear[#clear + 1] = numbers[i]; clear[#clear + 1] = '0'
        end
      end
    end
  end
  if #set > 0 then redis.call('BITFIELD', marks, unpack(set)) end
  if #clear > 0 then redis.call('BITFIELD', marks, unpack(clear)) end
end
if counted > 0 then redis.call('HINCRBY', c, 'recipients', counted) end
if skipped > 0 then redis.call('HINCRBY', c, 'skipped', skipped) end
if #flight == 0 then return {'batch'} end
local batch = tostring(redis.call('HINCRBY', c, 'batches', 1))
redis.call('HSET', inflight, batch, string.rep('1', #flight) .. ' ' .. table.concat(flight, ','))
return {'batch', batch, table.concat(taken)}
