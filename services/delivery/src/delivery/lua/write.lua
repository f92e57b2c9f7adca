-- Compare-and-set a delivery's state.
-- KEYS: hash, history, events stream, stages stream, trail.
-- ARGV: expected rev, state JSON, stage, history event JSON ('' for none), TTL seconds (0 for
-- none), events maxlen, stages maxlen, tracking channel ('' publishes nothing), n (stage entries),
-- then n times: stage, status JSON, only-if-changed ('1'/'0'); then the delivery event's fields
-- (none: no event).
-- Returns the new rev, 0 when rev moved on, -1 when there is no delivery.
local h = redis.call('HMGET', KEYS[1], 'rev', 'lver')
local rev = h[1]
if not rev then
  return -1
end
if rev ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'stage', ARGV[3])
local next_rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
end
local n = tonumber(ARGV[9])
local added = false
for i = 0, n - 1 do
  local at = 10 + i * 3
  if add_stage(KEYS[1], KEYS[4], ARGV[7], ARGV[at], ARGV[at + 1], h[2] or 0,
      ARGV[at + 2] == '1') then
    added = true
  end
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  for i = 1, #KEYS do
    if i ~= 3 then
      redis.call('EXPIRE', KEYS[i], ttl)
    end
  end
end
local first_event = 10 + n * 3
if #ARGV >= first_event then
  append_event(KEYS[3], ARGV[6], {unpack(ARGV, first_event)})
end
if ARGV[8] ~= '' then
  redis.call('PUBLISH', ARGV[8], added and 's' or 'u')
end
return next_rev
