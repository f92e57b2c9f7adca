-- Leave the group: delete the consumer, unless it still holds entries.
-- KEYS: stream. ARGV: group, consumer. Returns 0 either way (what DELCONSUMER answers is the
-- number of entries the consumer held, none).
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
