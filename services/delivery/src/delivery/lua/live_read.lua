-- What the telemetry consumer needs of a delivery.
-- KEYS: hash. ARGV: the rev the caller has the state of ('' for none).
-- Returns nil for no delivery, else {rev, stored stage, live JSON or nil, lver, state JSON or
-- nil (only when the rev differs)}.
local h = redis.call('HMGET', KEYS[1], 'rev', 'stage', 'live', 'lver')
if not h[1] then
  return nil
end
local state = false
if h[1] ~= ARGV[1] then
  state = redis.call('HGET', KEYS[1], 'state')
end
return {h[1], h[2], h[3], h[4] or '0', state}
