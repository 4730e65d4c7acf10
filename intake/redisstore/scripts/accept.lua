local id, now, ttl = ARGV[1], ARGV[2], ARGV[5]
-- Every Redis call here costs the web's answer time (the script is most of
-- Redis's work per lead), so each reads or writes all it can at once.
if redis.call('EXISTS', KEYS[20], KEYS[5]) > 0 then
  -- The web lost the answer to a call with this id and, finding no lead,
  -- answered 503 (Leads.Admitted): a call arriving late stores nothing.
  if redis.call('EXISTS', KEYS[20]) == 1 then return {'void'} end
  -- The same call again (a client re-sends a script whose answer it lost):
  -- the first one stored the lead, and its answer stands.
  return {'accepted', id, redis.call('HGET', KEYS[5], 'state')}
end
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
-- count adds one to the counter k, whose window of window ms starts at its
-- first count: one call for a counter new in its window, as most are.
local function count(k, window)
  if redis.call('SET', k, '1', 'PX', window, 'NX') then return 1 end
  return redis.call('INCR', k)
end
-- The rate limits: a refused request counts against neither.
for i, k in ipairs({KEYS[3], KEYS[4]}) do
  if count(k, ARGV[5 + 2 * i]) > tonumber(ARGV[4 + 2 * i]) then
    for j = 1, i do redis.call('DECR', KEYS[2 + j]) end
    local left = redis.call('PTTL', k)
    if left < 0 then
      left = tonumber(ARGV[5 + 2 * i])
      redis.call('PEXPIRE', k, left)
    end
    return {'rate', tostring(left)}
  end
end
-- The dedupe key is claimed for this lead at once (SET NX: one call where
-- a GET and a SET were); only when it is taken is it read, and a lead it
-- names that is gone (erased) leaves it to be overwritten below.
local fresh = redis.call('SET', KEYS[2], id, 'PX', ttl, 'NX')
local result = not fresh and claim(redis.call('GET', KEYS[2])) or nil
local lead = result and result[2]
local p = redis.call('HMGET', KEYS[8], 'blocked', 'contact', 'n', 'marketing', 'profile')
local blocked, marketing, profile = p[1] == '1', p[4], p[5]
-- The 24 h repeat counts (IP, person, BIN/IIN) of the risk score. A new
-- lead's are taken when the router first reads it (repeats.lua), after
-- the 202: three counters fewer in this call. A duplicate is never routed,
-- and a blocked person's lead not until the block is lifted, maybe weeks
-- on: theirs are taken now.
local repeats = KEYS[12] .. ' ' .. KEYS[13]
if ARGV[13] == '1' then repeats = repeats .. ' ' .. KEYS[14] end
local seen
if result or blocked then
  seen = {0, 0, 0}
  local i = 0
  for k in string.gmatch(repeats, '%S+') do i = i + 1; seen[i] = count(k, ARGV[12]) end
end
-- The person's fields this request writes, in one HSET at the end.
local pf = {}
local function set(k, v) pf[#pf + 1] = k; pf[#pf + 1] = v end
if not result then
  lead, result = id, {'accepted', id, blocked and 'blocked' or 'received'}
  -- Queued before it is written: should the script fail half-way (a bug),
  -- a routing entry whose lead is missing is dropped by the router, while
  -- a lead stored without one would wait for the sweeper. A person who
  -- asked to block processing has the request stored, but not routed or
  -- mailed for, until they lift the block (then it is received).
  if not blocked then redis.call('XADD', KEYS[21], '*', 'route', id) end
  redis.call('ZADD', KEYS[6], now, id)
  redis.call('ZADD', blocked and KEYS[22] or KEYS[7], now, id)
  redis.call('ZADD', KEYS[9], now, id)
  redis.call('ZADD', KEYS[10], now, id)
  if not fresh then redis.call('SET', KEYS[2], id, 'PX', ttl) end
  -- The person's profile (where mail goes, by what name, in which language,
  -- what a campaign segment matches) is their first request's. Anyone who
  -- knows an address can post a request with it, so a later request changes
  -- the profile only through the link mailed to that address (confirm.lua),
  -- or a privacy officer's rectification; the lead keeps its own data.
  if not p[2] then
    set('contact', ARGV[16]); set('lang', ARGV[17]); set('entity_type', ARGV[18]); set('products', ARGV[19])
    set('profile', ARGV[20])
    profile = ARGV[20]
  end
  set('updated', now)
  -- A number of their own: their bit in every campaign's marks.
  if not p[3] then set('n', redis.call('INCR', KEYS[19])) end
  redis.call('ZADD', KEYS[15], now, ARGV[15])
end
if ARGV[3] == '1' then redis.call('SET', KEYS[1], lead .. ' ' .. ARGV[4], 'PX', ttl) end
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
    set('marketing', state); set('marketing_at', now)
    if state == 'active' then
      if not blocked then redis.call('ZADD', KEYS[16], 0, ARGV[15]) end
    else
      redis.call('ZADD', KEYS[17], now, ARGV[15])
    end
    marketing = state
  end
  redis.call('RPUSH', KEYS[11], lead .. ' ' .. ARGV[11])
end
if #pf > 0 then redis.call('HSET', KEYS[8], unpack(pf)) end
-- Whether this request asks the person for a confirmation link: a pending
-- opt-in it carried (a repeat's tick asks on the first lead's behalf), or a
-- confirmed subscriber's details other than their profile. The link is
-- mailed to the address (jobs/welcome.go); following it applies the details
-- of the request it was mailed for.
local asks = (ARGV[10] == '1' and marketing == 'pending') or
  (result[1] == 'accepted' and marketing == 'active' and profile ~= ARGV[20])
if result[1] == 'accepted' then
  -- The new lead, whole: its fields in clear (ARGV 21..23 and the profile's
  -- own), its repeat counts or the counters they are to be taken on, its
  -- sealed record, and a source label if any.
  local lf = {'state', result[3], 'observed', ARGV[21], 'entity_type', ARGV[18], 'lang', ARGV[17],
    'products', ARGV[19], 'person', ARGV[15], 'phone', ARGV[22], 'created', now, 'updated', now,
    'route_since', now, 'pii', ARGV[23]}
  if seen then
    for i, f in ipairs({'same_ip', 'same_email', 'same_tax_id'}) do lf[#lf + 1] = f; lf[#lf + 1] = seen[i] end
  else
    lf[#lf + 1] = 'repeat_keys'; lf[#lf + 1] = repeats
  end
  if blocked then lf[#lf + 1] = 'blocked_from'; lf[#lf + 1] = 'received' end
  if asks then lf[#lf + 1] = 'asks_link'; lf[#lf + 1] = '1' end
  if ARGV[24] then lf[#lf + 1] = 'utm_source'; lf[#lf + 1] = ARGV[24] end
  redis.call('HSET', KEYS[5], unpack(lf))
  return result
end
if asks then redis.call('HSET', 'lg:lead:' .. lead, 'asks_link', '1') end
-- A repeat's work for the workers, in this same step as a new lead's
-- (above), so that a 202 always means stored and queued: the routing of a
-- lead still received, which may have lost its task (queuing it twice is
-- harmless), and the opt-in request a repeat adds to a lead that passed the
-- risk check (one still received gets it from the router; one held for
-- review or blocked never).
if result[3] == 'received' then
  redis.call('XADD', KEYS[21], '*', 'route', lead)
elseif ARGV[10] == '1' and (result[3] == 'routed' or result[3] == 'failed') then
  redis.call('XADD', KEYS[21], '*', 'optin', lead)
end
return result
