if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
if redis.call('HEXISTS', KEYS[1], 'assign_team') == 0 then
  redis.call('HSET', KEYS[1], 'assign_rule', ARGV[1], 'assign_team', ARGV[2], 'assign_owner', ARGV[3], 'assign_crm_user', ARGV[4])
end
return redis.call('HMGET', KEYS[1], 'assign_rule', 'assign_team', 'assign_owner', 'assign_crm_user')
