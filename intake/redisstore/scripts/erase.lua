local person, nc, nx, nl, fixed = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('ZCARD', KEYS[2]) ~= nl then return 'changed' end
local ids = {}
for i = 1, nl do
  local id = ARGV[5 + i]
  if not redis.call('ZSCORE', KEYS[2], id) then return 'changed' end
  ids[id] = true
end
local base = fixed + nc + nx
for i = 1, nl do
  local id, k = ARGV[5 + i], base + (i - 1) * 4
  redis.call('DEL', KEYS[k + 1], KEYS[k + 2])
  redis.call('ZREM', KEYS[k + 3], id)
  if redis.call('GET', KEYS[k + 4]) == id then redis.call('DEL', KEYS[k + 4]) end
  redis.call('ZREM', KEYS[8], id)
  for s = 13, fixed do redis.call('ZREM', KEYS[s], id) end
end
for i = fixed + nc + 1, fixed + nc + nx do
  local v = redis.call('GET', KEYS[i])
  if v then
    local sep = string.find(v, ' ', 1, true)
    if ids[sep and string.sub(v, 1, sep - 1) or v] then redis.call('DEL', KEYS[i]) end
  end
end
local number = redis.call('HGET', KEYS[1], 'n')
for i = fixed + 1, fixed + nc do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t == 'zset' then
    redis.call('ZREM', KEYS[i], person)
  elseif t == 'string' then
    -- A campaign's marks: the person's bit goes with them.
    if number then redis.call('SETBIT', KEYS[i], number, 0) end
  elseif t == 'hash' then
    redis.call('HDEL', KEYS[i], person)
    if string.sub(KEYS[i], -9) == ':inflight' then
      -- In flight is one entry a batch (mark.lua): the person's slot is
      -- cleared, so no outcome is recorded for them, and their name goes.
      local kv = redis.call('HGETALL', KEYS[i])
      for k = 1, #kv, 2 do
        local entry = kv[k + 1]
        local sep = string.find(entry, ' ', 1, true)
        if sep then
          local names, slot = {}, nil
          for p in string.gmatch(string.sub(entry, sep + 1), '[^,]+') do
            names[#names + 1] = p
            if p == person then slot = #names; names[slot] = '-' end
          end
          if slot then
            local waiting = string.sub(entry, 1, slot - 1) .. '0' .. string.sub(entry, slot + 1, sep - 1)
            if string.find(waiting, '1', 1, true) then
              redis.call('HSET', KEYS[i], kv[k], waiting .. ' ' .. table.concat(names, ','))
            else
              redis.call('HDEL', KEYS[i], kv[k])
            end
          end
        end
      end
    end
    -- A campaign's walk cursor and retry list name people too. The cursor
    -- only orders the walk: cut to a prefix it walks on from the same place,
    -- and anyone it passes again is skipped by their mark.
    if redis.call('HGET', KEYS[i], 'cursor') == person then
      redis.call('HSET', KEYS[i], 'cursor', string.sub(person, 1, #person - 1))
    end
    local retry = redis.call('HGET', KEYS[i], 'retry')
    if retry and string.find(',' .. retry .. ',', ',' .. person .. ',', 1, true) then
      local list = string.gsub(',' .. retry .. ',', ',' .. person .. ',', ',')
      redis.call('HSET', KEYS[i], 'retry', string.sub(list, 2, -2))
    end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[9], KEYS[10], KEYS[11], KEYS[12])
for i = 4, 6 do redis.call('ZREM', KEYS[i], person) end
redis.call('HSET', KEYS[7], person, 'erased')
return 'ok'
