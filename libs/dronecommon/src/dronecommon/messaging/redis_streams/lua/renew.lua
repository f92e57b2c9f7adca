-- Renew locks: reset the idle time of the entries this consumer still holds (XCLAIM JUSTID
-- does not count a delivery).
-- KEYS: stream. ARGV: group, consumer, id, token, id, token, ...
-- Returns the ids no longer owned.
local lost = {}
for i = 3, #ARGV, 2 do
  if owned(KEYS[1], ARGV[1], ARGV[i], ARGV[2], ARGV[i + 1]) then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
