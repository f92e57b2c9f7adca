-- What the telemetry consumer needs of a batch's deliveries, and each drone's latest fix kept.
-- KEYS: the n deliveries' hashes, then the m drones' hashes.
-- ARGV: n, the drone fix TTL (seconds), the n revs the caller has the state of ('' for none),
-- then m times: seq, fix JSON.
-- Returns n replies: nil for no delivery, else {rev, stored stage, live JSON or nil, lver,
-- state JSON or nil (only when the rev differs from the caller's)}. A drone's fix is kept only
-- if its seq is above the one kept (an older or repeated fix changes nothing). Its hash expires
-- between one and one and a half TTLs after the drone's last report: the expiry is set to one
-- and a half TTLs only once less than one TTL is left (read with TTL, which writes nothing), not
-- on every fix (a write, and a line of the append-only file, fewer per fix).
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
local ttl = tonumber(ARGV[2])
for k = n + 1, #KEYS do
  local seq = redis.call('HGET', KEYS[k], 'seq')
  if not seq or tonumber(seq) < tonumber(ARGV[arg]) then
    redis.call('HSET', KEYS[k], 'seq', ARGV[arg], 'fix', ARGV[arg + 1])
    if redis.call('TTL', KEYS[k]) < ttl then
      redis.call('EXPIRE', KEYS[k], ttl + math.floor(ttl / 2))
    end
  end
  arg = arg + 2
end
return out
