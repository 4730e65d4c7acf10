-- Another link was mailed since Go read which one was: read again.
if (redis.call('HGET', KEYS[1], 'pending_lead') or '') ~= ARGV[4] then return 'changed' end
-- The details of the request whose link was followed become the profile.
local function apply()
  if ARGV[5] == '' then return false end
  redis.call('HSET', KEYS[1], 'contact', ARGV[5], 'lang', ARGV[6], 'entity_type', ARGV[7], 'products', ARGV[8],
    'profile', ARGV[9])
  redis.call('HDEL', KEYS[1], 'pending_lead', 'pending_until')
  return true
end
local m = redis.call('HGET', KEYS[1], 'marketing')
if m == 'active' then
  -- A confirmed subscriber's own change of details, proven by the link.
  if apply() then
    redis.call('RPUSH', KEYS[2], ARGV[4] .. ' ' .. ARGV[10])
    return 'updated'
  end
  return 'already'
end
if m ~= 'pending' then return 'none' end
redis.call('HSET', KEYS[1], 'marketing', 'active', 'marketing_at', ARGV[1], 'confirmed_at', ARGV[1])
redis.call('RPUSH', KEYS[2], '- ' .. ARGV[2])
apply()
-- A blocked person's consent counts from now, but campaigns reach them
-- only once the block is lifted (unblock puts them in the index).
if redis.call('HGET', KEYS[1], 'blocked') ~= '1' then redis.call('ZADD', KEYS[3], 0, ARGV[3]) end
redis.call('ZREM', KEYS[4], ARGV[3])
redis.call('HDEL', KEYS[5], ARGV[3])
return 'confirmed'
