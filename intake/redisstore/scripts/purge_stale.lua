local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('PTTL', k) == -1 then
    n = n + 1
    if ARGV[1] ~= '1' then redis.call('UNLINK', k) end
  end
end
return n
