-- What the telemetry consumer needs of a batch's deliveries, and each drone's latest fix kept.
-- KEYS: the n deliveries' hashes, then the m drones' hashes.
-- ARGV: n, the drone fix TTL (seconds), the n revs the caller has the state of ('' for none),
-- then m times: seq, fix JSON.
-- Returns n replies: nil for no delivery, else {rev, stored stage, live JSON or nil, lver,
-- state JSON or nil (only when the rev differs from the caller's)}. A drone's fix is kept only
-- if its seq is above the one kept (an older or repeated fix changes nothing). Its hash expires
-- between one and one and a half TTLs after the drone's last report: the expiry ('until', Unix
-- seconds) is pushed out by one and a half TTLs only once less than one TTL is left, not on
-- every fix (a write, and a line of the append-only file, fewer per fix).
local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  local h = redis.call('HMGET', KEYS[i], 'rev', 'stage', 'live', 'lver')
  if h[1] then
    local state = false
    if h[1] ~= ARGV[2 + i] then
      state = redis.call('HGET', KEYS[i], 'state')
    end
    out[i] = {h[1], h[2], h[3], h[4] or '0', state}
  else
    out[i] = false
  end
end
local arg = 3 + n
if #KEYS > n then
  local ttl = tonumber(ARGV[2])
  local now = tonumber(redis.call('TIME')[1])
  local keep = now + ttl + math.floor(ttl / 2)
  for k = n + 1, #KEYS do
    local h = redis.call('HMGET', KEYS[k], 'seq', 'until')
    if not h[1] or tonumber(h[1]) < tonumber(ARGV[arg]) then
      if h[2] and tonumber(h[2]) >= now + ttl then
        redis.call('HSET', KEYS[k], 'seq', ARGV[arg], 'fix', ARGV[arg + 1])
      else
        redis.call('HSET', KEYS[k], 'seq', ARGV[arg], 'fix', ARGV[arg + 1], 'until', keep)
        redis.call('EXPIREAT', KEYS[k], keep)
      end
    end
    arg = arg + 2
  end
end
return out
