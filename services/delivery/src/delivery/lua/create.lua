-- Create a delivery unless it exists.
-- KEYS: hash, history, events stream, stages stream, the owner's list.
-- ARGV: put JSON, state JSON, stage, first history event JSON, events maxlen, stages maxlen,
-- tracking channel, the first stage entry's stage and status JSON, creation time (ms), id, then
-- the delivery event's fields (none: no event).
-- Returns nil when it created the delivery, else the stored 'put' of the existing one.
-- The revision starts at the server's time in microseconds, so an id used again after its
-- delivery expired never repeats a revision (readers cache parsed records by revision).
local existing = redis.call('HGET', KEYS[1], 'put')
if existing then
  return existing
end
local now = redis.call('TIME')
local rev = now[1] .. string.sub('00000' .. now[2], -6)
redis.call('HSET', KEYS[1], 'put', ARGV[1], 'state', ARGV[2], 'stage', ARGV[3], 'rev', rev)
redis.call('DEL', KEYS[2], KEYS[4])
redis.call('RPUSH', KEYS[2], ARGV[4])
add_stage(KEYS[1], KEYS[4], ARGV[6], ARGV[8], ARGV[9], 0, false)
redis.call('ZADD', KEYS[5], ARGV[10], ARGV[11])
if #ARGV > 11 then
  append_event(KEYS[3], ARGV[5], {unpack(ARGV, 12)})
end
redis.call('PUBLISH', ARGV[7], 's')
return false
