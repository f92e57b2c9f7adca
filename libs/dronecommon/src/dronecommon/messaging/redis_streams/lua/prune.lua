-- Delete consumers that hold nothing and have not been seen for a long time (dead pods); a live
-- consumer would be re-created by its next read anyway, and one holding entries is never
-- deleted (that would drop its pending entries).
-- KEYS: stream. ARGV: group, min idle ms, own consumer name. Returns how many were deleted.
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) and info['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
