-- Admit a new delivery request of one account, or say why not (one step, so replicas agree).
-- KEYS[1]: the account's rate (GCRA theoretical arrival time, ms); KEYS[2]: its deliveries in
-- progress (sorted set: deliveryId -> when it stops counting, ms).
-- ARGV: deliveryId, emission interval (ms), burst, max in progress, counted for (ms).
-- Returns {'ok', 0}, {'rate', ms to wait} or {'busy', count}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])

local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local allowed_at = next_tat - interval * burst
if allowed_at > now then
  return {'rate', allowed_at - now}
end

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
-- The same delivery again (a resend under an Idempotency-Key) is already counted.
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  local count = redis.call('ZCARD', KEYS[2])
  if count >= tonumber(ARGV[4]) then
    return {'busy', count}
  end
end

local until_ms = now + tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], until_ms, ARGV[1])
redis.call('PEXPIREAT', KEYS[2], until_ms)
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.max(1, next_tat - now))
return {'ok', 0}
