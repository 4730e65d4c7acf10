-- KEYS: 1 the lead, 2 its void mark. ARGV: 1 the mark's lifetime (ms).
local state = redis.call('HGET', KEYS[1], 'state')
if state then return state end
-- pcall: a Redis out of memory refuses the mark, but then it refused the
-- accept call too (a script's first write is where OOM stops it), so the
-- answer "not stored" stands.
redis.pcall('SET', KEYS[2], '1', 'PX', ARGV[1])
return false
