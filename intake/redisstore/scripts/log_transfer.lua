-- Appends a transfer to a lead's disclosure log if the lead still exists.
-- The same transfer again is this call re-run after its answer was lost
-- (untilRecorded): it is logged once.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if not redis.call('LPOS', KEYS[2], ARGV[1]) then redis.call('RPUSH', KEYS[2], ARGV[1]) end
return 1
