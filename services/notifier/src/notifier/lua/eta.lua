-- Remember a delivery's latest ETAs (from Assigned, Rescheduled, EtaChanged), newest event wins.
-- KEYS: memo hash. ARGV: event time ms, then field/value pairs, then retention s (last).
-- Returns the memo after the write as a flat field/value list.
local at = tonumber(ARGV[1])
local known = tonumber(redis.call('HGET', KEYS[1], 'at') or '-1')
if at >= known then
  redis.call('HSET', KEYS[1], 'at', ARGV[1], unpack(ARGV, 2, #ARGV - 1))
  redis.call('EXPIRE', KEYS[1], ARGV[#ARGV])
end
return redis.call('HGETALL', KEYS[1])
