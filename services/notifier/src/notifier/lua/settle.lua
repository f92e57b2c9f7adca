-- Settle a claimed notification, if the caller still holds it (the holder is a fencing token:
-- a sender whose lease ran out and was taken over settles nothing).
-- KEYS: item, leased, due. ARGV: holder, id, outcome (sent|retry|failed|back), now ms,
-- due ms (retry), retention s, error or provider reference.
-- Returns 1 when settled, 0 when the caller no longer holds the item.
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then
  return 0
end
local outcome = ARGV[3]
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[1], 'holder')
if outcome == 'sent' then
  redis.call('HSET', KEYS[1], 'status', 'sent', 'sentAt', ARGV[4], 'ref', ARGV[7])
  redis.call('HDEL', KEYS[1], 'dueAt')
  redis.call('EXPIRE', KEYS[1], ARGV[6])
elseif outcome == 'failed' then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'failedAt', ARGV[4], 'lastError', ARGV[7])
  redis.call('HDEL', KEYS[1], 'dueAt')
  redis.call('EXPIRE', KEYS[1], ARGV[6])
elseif outcome == 'retry' then
  redis.call('HSET', KEYS[1], 'status', 'pending', 'dueAt', ARGV[5], 'lastError', ARGV[7])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
else -- 'back': handed back unsent (shutdown); the attempt does not count
  redis.call('HSET', KEYS[1], 'status', 'pending', 'dueAt', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'attempts', -1)
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
end
return 1
