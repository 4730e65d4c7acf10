local leadCutoff, optinCutoff, dry = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[5] == '1'
-- Read by rank, as purge_leads.lua reads its batch.
local first, n = tonumber(ARGV[3]), redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
local people = first < n and redis.call('ZRANGE', KEYS[1], first, math.min(first + ARGV[4], n) - 1) or {}
local removed, kept = 0, 0
for _, p in ipairs(people) do
  local pk = 'lg:person:' .. p
  local hasLead = false
  if dry then
    for _, id in ipairs(redis.call('ZRANGE', pk .. ':leads', 0, -1)) do
      local s = redis.call('ZSCORE', KEYS[2], id)
      if s and tonumber(s) > leadCutoff then hasLead = true; break end
    end
  else
    hasLead = redis.call('EXISTS', pk .. ':leads') == 1
  end
  if not hasLead then
    local m = redis.call('HGET', pk, 'marketing')
    if dry and m == 'pending' then
      local at = redis.call('ZSCORE', KEYS[4], p)
      if at and tonumber(at) <= optinCutoff then m = false end
    end
    if m == 'active' or m == 'pending' then
      kept = kept + 1
    else
      removed = removed + 1
      if not dry then
        redis.call('UNLINK', pk, pk .. ':leads', pk .. ':consents')
        for i = 1, 4 do if i ~= 2 then redis.call('ZREM', KEYS[i], p) end end
      end
    end
  end
end
return {#people, removed, kept}
