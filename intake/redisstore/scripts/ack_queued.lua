-- Marks that a lead's acknowledgement was queued as a lead:ack task, if the
-- lead still exists: a bare HSET would bring an erased or purged lead back
-- as a hash of one field.
-- KEYS: 1 the lead. Returns 0 when the lead is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'ack_queued', '1')
return 1
