-- Apply the telemetry consumer's updates of a batch's deliveries, each only if nobody changed
-- that delivery since the read.
-- KEYS: per update its delivery's hash, history, trail and stages stream; then the events stream.
-- ARGV: n updates, trail length, stages maxlen, events maxlen; then per update: expected rev,
-- expected lver, live JSON, tracking channel, a (trail fixes), b (history entries), c (stage
-- entries: 0 or 1), d (delivery events), then the a trail fixes (oldest first), the b history
-- entries, the stage entry (stage, status JSON) if c = 1, and the d events (8 fields each).
-- Returns per update the new lver; 0 when the delivery or its tracking state changed since the
-- read (the caller reads again), -1 when there is no delivery, -2 when it is Completed or
-- Cancelled.
local n = tonumber(ARGV[1])
local trail_length = tonumber(ARGV[2])
local events = KEYS[#KEYS]
local out = {}
local i = 5
for u = 1, n do
  local hash, history, trail, stages = KEYS[u * 4 - 3], KEYS[u * 4 - 2], KEYS[u * 4 - 1], KEYS[u * 4]
  local a, b, c, d = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]),
    tonumber(ARGV[i + 7])
  local first = i + 8
  local h = redis.call('HMGET', hash, 'rev', 'stage', 'lver')
  if not h[1] then
    out[u] = -1
  elseif h[2] == 'Completed' or h[2] == 'Cancelled' then
    out[u] = -2
  elseif h[1] ~= ARGV[i] or (h[3] or '0') ~= ARGV[i + 1] then
    out[u] = 0
  else
    -- The version just read, plus one: one HSET rather than HINCRBY and HSET.
    local lver = tonumber(h[3] or '0') + 1
    redis.call('HSET', hash, 'lver', lver, 'live', ARGV[i + 2])
    local j = first
    if a > 0 then
      -- Trimmed only once it is longer than kept: most deliveries never get there.
      if redis.call('LPUSH', trail, unpack(ARGV, j, j + a - 1)) > trail_length then
        redis.call('LTRIM', trail, 0, trail_length - 1)
      end
      j = j + a
    end
    if b > 0 then
      redis.call('RPUSH', history, unpack(ARGV, j, j + b - 1))
      j = j + b
    end
    local kind = 'f'
    if c > 0 then
      add_stage(hash, stages, ARGV[3], ARGV[j], ARGV[j + 1], lver, false)
      j = j + 2
      kind = 's'
    end
    for _ = 1, d do
      append_event(events, ARGV[4], {unpack(ARGV, j, j + 7)})
      j = j + 8
    end
    redis.call('PUBLISH', ARGV[i + 3], kind)
    out[u] = lver
  end
  i = first + a + b + c * 2 + d * 8
end
return out
