local c, marks, inflight = KEYS[1], KEYS[2], KEYS[4]
if redis.call('HGET', c, 'state') ~= 'sending' then return {'stopped'} end
local retry = ARGV[1] == '1'
local n = tonumber(ARGV[3])
-- The m candidates' people are ARGV[p0 + 1 .. p0 + m], their numbers
-- ARGV[num0 + 1 .. num0 + m]: read where they are, not copied into tables
-- of their own. Lua's work a candidate is most of this script's time, so
-- lists are filled by counters (Lua's # is a search each time).
local p0 = 3 + n
local m = (#ARGV - p0) / 2
local num0 = p0 + m
-- take[i]: this call decides candidate i's outcome. Anyone else was dealt
-- with before (already marked by an earlier batch, or no longer waiting on
-- the retry list) and is neither counted nor sent to again.
local take, counted, skipped = {}, 0, 0
if retry then
  local waiting, chunk, keep, k = {}, {}, {}, 0
  for i = 4, p0 do chunk[ARGV[i]] = true end
  for p in string.gmatch(redis.call('HGET', c, 'retry') or '', '[^,]+') do
    if chunk[p] then waiting[p] = true else k = k + 1; keep[k] = p end
  end
  redis.call('HSET', c, 'retry', table.concat(keep, ','))
  local read = {}
  for i = 1, m do
    local p = ARGV[p0 + i]
    read[p] = true
    if waiting[p] then take[i] = true end
  end
  -- Waiting but not read: no longer held at all. Counted as recipients
  -- when first marked, so now skipped.
  for p in pairs(waiting) do
    if not read[p] then skipped = skipped + 1 end
  end
end
local held, nheld = {}, 0
if m > 0 then held = redis.call('ZMSCORE', KEYS[3], unpack(ARGV, p0 + 1, num0)) end
-- A walk reads and sets the marks in one BITFIELD: SET marks a held person
-- and answers the bit it replaced (1: an earlier batch marked them), GET
-- reads the bit of one no longer held.
if not retry then
  if ARGV[2] ~= '' then redis.call('HSET', c, 'cursor', ARGV[2]) end
  if m > 0 then
    -- Bits as strings: a Lua number is formatted with sprintf each time.
    local ops, k = {}, 0
    for i = 1, m do
      if held[i] then
        nheld = nheld + 1
        ops[k + 1] = 'SET'; ops[k + 2] = 'u1'; ops[k + 3] = ARGV[num0 + i]; ops[k + 4] = '1'; k = k + 4
      else
        ops[k + 1] = 'GET'; ops[k + 2] = 'u1'; ops[k + 3] = ARGV[num0 + i]; k = k + 3
      end
    end
    local bits = redis.call('BITFIELD', marks, unpack(ops, 1, k))
    for i = 1, m do
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
local f, people, taken
if not retry and m > 0 and nheld == m and counted == m then
  -- The usual walk batch, everyone held and new: the answer and the
  -- entry name all of them, in order, without a loop a candidate.
  f, people, taken = m, table.concat(ARGV, ',', p0 + 1, num0), string.rep('1', m)
else
  local flight, slots, set, clear, s, cl = {}, {}, {}, {}, 0, 0
  f = 0
  for i = 1, m do
    slots[i] = '0'
    if take[i] then
      if held[i] then
        if retry then -- a walk set it above
          set[s + 1] = 'SET'; set[s + 2] = 'u1'; set[s + 3] = ARGV[num0 + i]; set[s + 4] = '1'; s = s + 4
        end
        f = f + 1; flight[f] = ARGV[p0 + i]
        slots[i] = '1'
      else
        skipped = skipped + 1
        if retry then
          clear[cl + 1] = 'SET'; clear[cl + 2] = 'u1'; clear[cl + 3] = ARGV[num0 + i]; clear[cl + 4] = '0'; cl = cl + 4
        end
      end
    end
  end
  if s > 0 then redis.call('BITFIELD', marks, unpack(set, 1, s)) end
  if cl > 0 then redis.call('BITFIELD', marks, unpack(clear, 1, cl)) end
  people, taken = table.concat(flight, ','), table.concat(slots)
end
if counted > 0 then redis.call('HINCRBY', c, 'recipients', counted) end
if skipped > 0 then redis.call('HINCRBY', c, 'skipped', skipped) end
if f == 0 then return {'batch'} end
local batch = tostring(redis.call('HINCRBY', c, 'batches', 1))
redis.call('HSET', inflight, batch, string.rep('1', f) .. ' ' .. people)
return {'batch', batch, taken}
