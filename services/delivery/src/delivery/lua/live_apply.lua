-- Apply the telemetry consumer's update of one delivery, if nobody changed it meanwhile.
-- KEYS: hash, history, trail, stages stream, events stream.
-- ARGV: 1 expected rev, 2 expected lver, 3 live JSON, 4 trail length, 5 stages maxlen,
-- 6 events maxlen, 7 tracking channel, 8 n trail fixes, 9 n history entries, 10 n stage entries
-- (0 or 1), 11 n delivery events; then the trail fixes (oldest first), the history entries, the
-- stage entry (stage, status JSON) and the events (8 fields each).
-- Returns the new lver; 0 when the delivery or its tracking state changed since the read (the
-- caller reads again), -1 when there is no delivery, -2 when it is Completed or Cancelled.
local h = redis.call('HMGET', KEYS[1], 'rev', 'stage', 'lver')
if not h[1] then
  return -1
end
if h[2] == 'Completed' or h[2] == 'Cancelled' then
  return -2
end
if h[1] ~= ARGV[1] or (h[3] or '0') ~= ARGV[2] then
  return 0
end
local lver = redis.call('HINCRBY', KEYS[1], 'lver', 1)
redis.call('HSET', KEYS[1], 'live', ARGV[3])
local i = 12
local n = tonumber(ARGV[8])
if n > 0 then
  redis.call('LPUSH', KEYS[3], unpack(ARGV, i, i + n - 1))
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
  i = i + n
end
n = tonumber(ARGV[9])
if n > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, i + n - 1))
  i = i + n
end
local kind = 'f'
if tonumber(ARGV[10]) > 0 then
  add_stage(KEYS[1], KEYS[4], ARGV[5], ARGV[i], ARGV[i + 1], lver, false)
  i = i + 2
  kind = 's'
end
for _ = 1, tonumber(ARGV[11]) do
  append_event(KEYS[5], ARGV[6], {unpack(ARGV, i, i + 7)})
  i = i + 8
end
redis.call('PUBLISH', ARGV[7], kind)
return lver
