local now, old, new, moving = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local nc, nl, nk = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local lk0, la0 = 19 + nc, 12 + nk
if redis.call('ZCARD', KEYS[3]) ~= tonumber(ARGV[5]) then return 'changed' end
if ARGV[6] ~= '-1' and redis.call('LLEN', KEYS[5]) ~= tonumber(ARGV[6]) then return 'changed' end
for i = 1, nl do
  if not redis.call('ZSCORE', KEYS[3], ARGV[la0 + (i - 1) * 4 + 1]) then return 'changed' end
end
if moving and (redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[4]) == 1) then return 'conflict' end
for i = 1, nl do
  local a, k = la0 + (i - 1) * 4, lk0 + (i - 1) * 5
  local id, lk = ARGV[a + 1], KEYS[k + 1]
  if redis.call('EXISTS', lk) == 1 then
    redis.call('HSET', lk, 'pii', ARGV[a + 2], 'person', new, 'updated', now)
    if ARGV[8] ~= '' then redis.call('HSET', lk, 'lang', ARGV[8]) end
    if ARGV[a + 3] ~= '' then
      redis.call('HSET', lk, 'phone', ARGV[a + 3])
      redis.call('ZREM', KEYS[k + 2], id)
      redis.call('ZADD', KEYS[k + 3], ARGV[a + 4], id)
    end
    if KEYS[k + 4] ~= KEYS[k + 5] and redis.call('GET', KEYS[k + 4]) == id then
      local ttl = redis.call('PTTL', KEYS[k + 4])
      redis.call('DEL', KEYS[k + 4])
      if ttl > 0 then redis.call('SET', KEYS[k + 5], id, 'PX', ttl, 'NX') end
    end
    redis.call('ZADD', KEYS[11], now, id)
  end
end
if moving then
  for _, i in ipairs({1, 3}) do -- the consent history is written anew, re-sealed for the new hash
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], KEYS[i + 1]) end
  end
  redis.call('DEL', KEYS[5])
  for i = 1, nk do redis.call('RPUSH', KEYS[6], ARGV[12 + i]) end
  for i = 7, 9 do
    local score = redis.call('ZSCORE', KEYS[i], old)
    if score then
      redis.call('ZREM', KEYS[i], old)
      redis.call('ZADD', KEYS[i], score, new)
    end
  end
  local reason = redis.call('HGET', KEYS[10], old)
  if reason then
    redis.call('HDEL', KEYS[10], old)
    redis.call('HSETNX', KEYS[10], new, reason)
  end
  for i = 12, 19, 2 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
      if redis.call('EXISTS', KEYS[i + 1]) == 1 then redis.call('DEL', KEYS[i]) else redis.call('RENAME', KEYS[i], KEYS[i + 1]) end
    end
  end
  for i = 20, 19 + nc do
    local t = redis.call('TYPE', KEYS[i]).ok
    if t == 'zset' then
      local score = redis.call('ZSCORE', KEYS[i], old)
      if score then redis.call('ZREM', KEYS[i], old); redis.call('ZADD', KEYS[i], score, new) end
    elseif t == 'hash' then
      local mark = redis.call('HGET', KEYS[i], old)
      if mark then redis.call('HDEL', KEYS[i], old); redis.call('HSETNX', KEYS[i], new, mark) end
      if string.sub(KEYS[i], -9) == ':inflight' then
        -- In flight is one entry a batch (mark.lua): the person is renamed
        -- in the batch's list of people, their slot kept.
        local kv = redis.call('HGETALL', KEYS[i])
        for k = 1, #kv, 2 do
          local entry = kv[k + 1]
          local sep = string.find(entry, ' ', 1, true)
          local list = sep and ',' .. string.sub(entry, sep + 1) .. ','
          if list and string.find(list, ',' .. old .. ',', 1, true) then
            list = string.gsub(list, ',' .. old .. ',', ',' .. new .. ',')
            redis.call('HSET', KEYS[i], kv[k], string.sub(entry, 1, sep) .. string.sub(list, 2, -2))
          end
        end
      end
      local retry = redis.call('HGET', KEYS[i], 'retry')
      if retry and string.find(',' .. retry .. ',', ',' .. old .. ',', 1, true) then
        local list = string.gsub(',' .. retry .. ',', ',' .. old .. ',', ',' .. new .. ',')
        redis.call('HSET', KEYS[i], 'retry', string.sub(list, 2, -2))
      end
    end
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'contact', ARGV[7]) end
  if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], 'lang', ARGV[8]) end
  if ARGV[12] ~= '' then redis.call('HSET', KEYS[2], 'profile', ARGV[12]) end
end
return 'ok'
