-- Records the lead's assignment unless it has one, marks the lead as being
-- pushed to the CRM, before the call, and returns the earlier mark: a redo
-- finds that an earlier attempt may have delivered it. One call for what
-- the router writes before a push.
-- KEYS[1] the lead hash, KEYS[2] the CRM-gone flag. ARGV[1] now (ms);
-- ARGV[2..5] the assignment to record (rule, team, owner, CRM user id),
-- when the router chose one.
-- Returns {'missing'}, {state} when the lead is no longer received (nothing
-- is marked), {'gone'} while the CRM endpoint is disabled (not marked: it
-- is not pushed), or {'received', earlier mark or '', the lead's
-- assignment's four fields}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
-- Whatever the state: a retried route keeps its salesperson and does not
-- move the round-robin on.
if #ARGV == 5 and redis.call('HEXISTS', KEYS[1], 'assign_team') == 0 then
  redis.call('HSET', KEYS[1], 'assign_rule', ARGV[2], 'assign_team', ARGV[3], 'assign_owner', ARGV[4], 'assign_crm_user', ARGV[5])
end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'received' then return {state} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'gone'} end
local earlier = redis.call('HGET', KEYS[1], 'pushing') or ''
redis.call('HSET', KEYS[1], 'pushing', ARGV[1])
local a = redis.call('HMGET', KEYS[1], 'assign_rule', 'assign_team', 'assign_owner', 'assign_crm_user')
return {state, earlier, a[1] or '', a[2] or '', a[3] or '', a[4] or ''}
