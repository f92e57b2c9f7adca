-- Enqueue one notification unless it was ever enqueued (the item hash is the dedupe record).
-- KEYS: item, due, delivery index. ARGV: id, now ms, retention s, then the item's fields.
-- Returns 1 when enqueued, 0 when the item already exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return 1
