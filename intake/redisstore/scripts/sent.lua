-- The records of a mail handed to the provider, in one round trip: the send
-- claim closed (if it is still there; its window kept) and, when given, the
-- transfer appended to the lead's disclosure log if the lead still exists.
-- The same transfer again is this call re-run after its answer was lost
-- (untilRecorded), even with another transfer logged between: it is
-- logged once.
-- KEYS: 1 the send claim, 2 the lead, 3 its disclosure log. ARGV: 1 the
-- closed claim's value, 2 the transfer (JSON) or ''.
-- Returns 0 when the transfer was not logged because the lead is gone.
redis.call('SET', KEYS[1], ARGV[1], 'XX', 'KEEPTTL')
if ARGV[2] == '' then return 1 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if not redis.call('LPOS', KEYS[3], ARGV[2]) then redis.call('RPUSH', KEYS[3], ARGV[2]) end
return 1
