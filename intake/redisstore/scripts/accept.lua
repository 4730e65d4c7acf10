local id, now, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[5]
-- The web lost the answer to a call with this id and, finding no lead,
-- answered 503 (Leads.Admitted): a call arriving late stores nothing.
if redis.call('EXISTS', KEYS[20]) == 1 then return {'void'} end
-- The same call again (a client re-sends a script whose answer it lost):
-- the first one stored the lead, and its answer stands.
if redis.call('EXISTS', KEYS[5]) == 1 then return {'accepted', id, redis.call('HGET', KEYS[5], 'state')} end
-- A repeat names a lead that must still exist (an erased one does not
-- count).
local function claim(lead)
  if not lead then return nil end
  local lk = 'lg:lead:' .. lead
  if redis.call('EXISTS', lk) == 0 then return nil end
  redis.call('HSET', lk, 'updated', now)
  redis.call('ZADD', KEYS[6], now, lead)
  return {'duplicate', lead, redis.call('HGET', lk, 'state')}
end
if ARGV[3] == '1' then
  local v = redis.call('GET', KEYS[1])
  if v then
    local sep = string.find(v, ' ', 1, true)
    if string.sub(v, sep + 1) ~= ARGV[4] then return {'idem_mismatch'} end
    local replay = claim(string.sub(v, 1, sep - 1))
    if replay then return replay end
  end
end
for i, k in ipairs({KEYS[3], KEYS[4]}) do
  local limit, window = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  if tonumber(redis.call('GET', k) or '0') >= limit then
    local left = redis.call('PTTL', k)
    if left < 0 then redis.call('PEXPIRE', k, window); left = window end
    return {'rate', tostring(left)}
  end
end
for i, k in ipairs({KEYS[3], KEYS[4]}) do
  if redis.call('INCR', k) == 1 then redis.call('PEXPIRE', k, ARGV[5 + 2 * i]) end
end
local seen = {0, 0, 0}
for i = 1, (ARGV[13] == '1') and 3 or 2 do
  seen[i] = redis.call('INCR', KEYS[11 + i])
  if seen[i] == 1 then redis.call('PEXPIRE', KEYS[11 + i], ARGV[12]) end
end
local result = claim(redis.call('GET', KEYS[2]))
local lead = result and result[2]
if not result then
  lead, result = id, {'accepted', id, 'received'}
  local blocked = redis.call('HGET', KEYS[8], 'blocked') == '1'
  -- Queued before it is written: should the script fail half-way (a bug),
  -- a routing entry whose lead is missing is dropped by the router, while
  -- a lead stored without one would wait for the sweeper.
  if not blocked then redis.call('XADD', KEYS[21], '*', 'route', id) end
  redis.call('HSET', KEYS[5], 'same_ip', seen[1], 'same_email', seen[2], 'same_tax_id', seen[3], unpack(ARGV, 21))
  redis.call('ZADD', KEYS[6], now, id)
  if blocked then
    -- The person asked to block processing: the request is stored, but not
    -- routed or mailed for, until they lift the block (then it is received).
    redis.call('HSET', KEYS[5], 'state', 'blocked', 'blocked_from', 'received')
    redis.call('ZADD', 'lg:leads:state:blocked', now, id)
    result[3] = 'blocked'
  else
    redis.call('ZADD', KEYS[7], now, id)
  end
  redis.call('ZADD', KEYS[9], now, id)
  redis.call('ZADD', KEYS[10], now, id)
  redis.call('SET', KEYS[2], id, 'PX', ttl)
  -- The person's profile (where mail goes, by what name, in which language,
  -- what a campaign segment matches) is their first request's. Anyone who
  -- knows an address can post a request with it, so a later request changes
  -- the profile only through the link mailed to that address (confirm.lua),
  -- or a privacy officer's rectification; the lead keeps its own data.
  if redis.call('HEXISTS', KEYS[8], 'contact') == 0 then
    redis.call('HSET', KEYS[8], 'contact', ARGV[16], 'lang', ARGV[17], 'entity_type', ARGV[18], 'products', ARGV[19],
      'profile', ARGV[20])
  end
  redis.call('HSET', KEYS[8], 'updated', now)
  -- A number of their own: their bit in every campaign's marks.
  if redis.call('HEXISTS', KEYS[8], 'n') == 0 then redis.call('HSET', KEYS[8], 'n', redis.call('INCR', KEYS[19])) end
  redis.call('ZADD', KEYS[15], now, ARGV[15])
end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], lead .. ' ' .. ARGV[4], 'PX', ttl) end
local marketing = redis.call('HGET', KEYS[8], 'marketing')
if ARGV[10] == '1' then
  if marketing ~= 'active' then
    -- A suppressed person (erased, bounced, reported spam) needs a fresh
    -- double opt-in whatever DOUBLE_OPT_IN says.
    local state = ARGV[14]
    if redis.call('HEXISTS', KEYS[18], ARGV[15]) == 1 then state = 'pending' end
    if marketing ~= 'pending' then
      -- A fresh opt-in: a change proposed by an older link is not its.
      redis.call('HDEL', KEYS[8], 'pending_lead', 'pending_until')
    end
    redis.call('HSET', KEYS[8], 'marketing', state, 'marketing_at', now)
    if state == 'active' then
      if redis.call('HGET', KEYS[8], 'blocked') ~= '1' then redis.call('ZADD', KEYS[16], 0, ARGV[15]) end
    else
      redis.call('ZADD', KEYS[17], now, ARGV[15])
    end
    marketing = state
  end
  redis.call('RPUSH', KEYS[11], lead .. ' ' .. ARGV[11])
end
-- Whether this request asks the person for a confirmation link: a pending
-- opt-in it carried (a repeat's tick asks on the first lead's behalf), or a
-- confirmed subscriber's details other than their profile. The link is
-- mailed to the address (jobs/welcome.go); following it applies the details
-- of the request it was mailed for.
if (ARGV[10] == '1' and marketing == 'pending') or
   (result[1] == 'accepted' and marketing == 'active' and redis.call('HGET', KEYS[8], 'profile') ~= ARGV[20]) then
  redis.call('HSET', 'lg:lead:' .. lead, 'asks_link', '1')
end
-- A repeat's work for the workers, in this same step as a new lead's
-- (above), so that a 202 always means stored and queued: the routing of a
-- lead still received, which may have lost its task (queuing it twice is
-- harmless), and the opt-in request a repeat adds to a lead that passed the
-- risk check (one still received gets it from the router; one held for
-- review or blocked never).
if result[1] == 'duplicate' then
  if result[3] == 'received' then
    redis.call('XADD', KEYS[21], '*', 'route', lead)
  elseif ARGV[10] == '1' and (result[3] == 'routed' or result[3] == 'failed') then
    redis.call('XADD', KEYS[21], '*', 'optin', lead)
  end
end
return result
