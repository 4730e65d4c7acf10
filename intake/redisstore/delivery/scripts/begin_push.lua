-- Records the lead's assignment unless it has one, marks the lead as being
-- pushed to the CRM, before the call, and returns the earlier mark: a redo
-- finds that an earlier attempt may have delivered it. One call for what
-- the router writes before a push.
-- KEYS[1] the lead hash, KEYS[2] the CRM-gone flag, KEYS[3] the admission
-- stream. ARGV[1] now (ms), ARGV[2] the lead id, ARGV[3] '1' to queue the
-- opt-in request of a lead that asks for a link; ARGV[4..7] the assignment
-- to record (rule, team, owner, CRM user id), when the router chose one.
-- Returns {'missing'}, {state} when the lead is no longer received (nothing
-- is marked), {'gone'} while the CRM endpoint is disabled (not marked: it
-- is not pushed), or {'received', earlier mark or '', the lead's
-- assignment's four fields}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
-- Whatever the state: a retried route keeps its salesperson and does not
-- move the round-robin on.
if #ARGV == 7 and redis.call('HEXISTS', KEYS[1], 'assign_team') == 0 then
  redis.call('HSET', KEYS[1], 'assign_rule', ARGV[4], 'assign_team', ARGV[5], 'assign_owner', ARGV[6], 'assign_crm_user', ARGV[7])
end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'received' then return {state} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'gone'} end
local f = redis.call('HMGET', KEYS[1], 'pushing', 'asks_link', 'optin_queued')
-- The opt-in request goes out with the first push, not once the CRM took
-- the lead: a CRM down for days must not hold the link back (an unconfirmed
-- opt-in is dropped UNCONFIRMED_OPTIN_TTL after the request). The entry
-- accept.lua writes for a repeat's opt-in, once a lead (optin_queued; the
-- move to routed or failed queues it when this did not).
if ARGV[3] == '1' and f[2] == '1' and not f[3] then
  redis.call('XADD', KEYS[3], '*', 'optin', ARGV[2])
  redis.call('HSET', KEYS[1], 'optin_queued', '1')
end
redis.call('HSET', KEYS[1], 'pushing', ARGV[1])
local a = redis.call('HMGET', KEYS[1], 'assign_rule', 'assign_team', 'assign_owner', 'assign_crm_user')
return {state, f[1] or '', a[1] or '', a[2] or '', a[3] or '', a[4] or ''}
