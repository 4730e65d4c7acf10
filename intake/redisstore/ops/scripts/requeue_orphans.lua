-- Puts back in line up to ARGV[3] of asynq's active tasks whose lease ended
-- at or before ARGV[1] (Unix seconds): no worker holds them any more. The
-- same steps as asynq's own Requeue (internal/rdb requeueCmd), which its
-- recoverer gets to only a minute or more later.
-- KEYS[1] the queue's lease zset, KEYS[2] its active list, KEYS[3] its
-- pending list; ARGV[2] the queue's task-key prefix. Returns the count.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  if redis.call('LREM', KEYS[2], 0, id) > 0 then
    redis.call('RPUSH', KEYS[3], id)
    redis.call('HSET', ARGV[2] .. id, 'state', 'pending')
    n = n + 1
  end
end
return n
