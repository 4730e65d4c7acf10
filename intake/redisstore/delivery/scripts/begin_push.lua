-- Marks a lead as being pushed to the CRM, before the call, and returns the
-- earlier mark: a redo finds that an earlier attempt may have delivered it.
-- KEYS[1] the lead hash, KEYS[2] the CRM-gone flag. ARGV[1] now (ms).
-- Returns {'missing', ''}, {state, ''} when the lead is no longer received
-- (nothing is marked), {'gone', ''} while the CRM endpoint is disabled (not
-- marked: it is not pushed), or {'received', earlier mark or ''}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', ''} end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'received' then return {state, ''} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'gone', ''} end
local earlier = redis.call('HGET', KEYS[1], 'pushing') or ''
redis.call('HSET', KEYS[1], 'pushing', ARGV[1])
return {state, earlier}
