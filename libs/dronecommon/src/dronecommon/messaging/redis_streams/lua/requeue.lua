-- Abandon or release: replace the entry by a copy at the back of the queue, if this consumer
-- still holds its lock.
-- KEYS: stream. ARGV: group, entry id, consumer, token, field, value, ... (the copy to add).
-- Returns the copy's id, or 0 when the lock is lost.
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
