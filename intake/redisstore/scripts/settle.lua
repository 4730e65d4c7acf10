local c, failed, inflight = KEYS[1], KEYS[2], KEYS[3]
local outcome, reason, room = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- In flight is one entry a batch (mark.lua): a byte a slot, '1' while that
-- person waits, then a space and the batch's people. Only slots still
-- waiting are settled, each once: an erased person's slot was cleared with
-- their records, and a batch a later run settled as lost is gone.
local owned, n = {}, 0
for a = 4, #ARGV - 1, 2 do
  local batch, now = ARGV[a], ARGV[a + 1]
  local entry = redis.call('HGET', inflight, batch)
  if entry then
    local sep = string.find(entry, ' ', 1, true)
    local waiting = string.sub(entry, 1, sep - 1)
    if outcome == 's' and now == waiting then
      -- The usual settle, everyone still waiting sent: counted without a
      -- loop a slot (which was most of this script's time).
      n = n + select(2, string.gsub(waiting, '1', ''))
      redis.call('HDEL', inflight, batch)
    else
      local people -- named only when the outcome records names
      if outcome ~= 's' then
        people = {}
        for p in string.gmatch(string.sub(entry, sep + 1), '[^,]+') do people[#people + 1] = p end
      end
      local left, pending = {}, false
      for i = 1, sep - 1 do
        if string.byte(entry, i) ~= 49 then
          left[i] = '0'
        elseif string.byte(now, i) == 49 then
          left[i] = '0'
          n = n + 1
          if people then owned[#owned + 1] = people[i] end
        else
          left[i] = '1'
          pending = true
        end
      end
      if pending then
        redis.call('HSET', inflight, batch, table.concat(left) .. string.sub(entry, sep))
      else
        redis.call('HDEL', inflight, batch)
      end
    end
  end
end
if n == 0 then return 0 end
if outcome == 's' then
  redis.call('HINCRBY', c, 'sent', n)
  return n
end
local fail = owned
if outcome == 'r' then
  fail = {}
  local list = redis.call('HGET', c, 'retry') or ''
  for _, p in ipairs(owned) do
    if #list + 1 + #p <= room then
      if list ~= '' then list = list .. ',' end
      list = list .. p
    else
      fail[#fail + 1] = p -- no room to keep them for a retry: given up on, and counted so
    end
  end
  redis.call('HSET', c, 'retry', list)
  reason = 'gave_up'
end
if #fail > 0 then
  local f = {}
  for _, p in ipairs(fail) do f[#f + 1] = p; f[#f + 1] = reason end
  redis.call('HSET', failed, unpack(f))
  redis.call('HINCRBY', c, 'failed', #fail)
  redis.call('HINCRBY', c, 'reason:' .. reason, #fail)
end
return n
