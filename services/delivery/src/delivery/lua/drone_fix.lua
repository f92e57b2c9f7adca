-- Keep a drone's latest fix: KEYS: the drone's hash. ARGV: seq, fix JSON, TTL seconds.
-- An older (or the same) seq changes nothing. Returns 1 when kept, 0 when dropped.
local seq = redis.call('HGET', KEYS[1], 'seq')
if seq and tonumber(seq) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'fix', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
