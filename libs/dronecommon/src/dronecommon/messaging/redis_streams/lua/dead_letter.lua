-- Dead-letter: add the dead letter and remove the entry, if this consumer still holds its lock.
-- KEYS: stream, dead-letter stream. ARGV: group, entry id, consumer, token, field, value, ...
-- (the dead letter). Returns 1, or 0 when the lock is lost.
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
