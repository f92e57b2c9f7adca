-- Claim up to N due notifications under a lease. Expired leases (a sender that died) first go
-- back to the due set. Every key shares the {outbox} hash tag, so the item keys this script
-- derives from ARGV[5] live in the same cluster slot as KEYS.
-- KEYS: due, leased. ARGV: now ms, lease ms, sender id, N, item key prefix.
-- Returns a flat list of HGETALL replies (each a flat field/value list).
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  local key = ARGV[5] .. id
  if redis.call('HGET', key, 'status') == 'sending' then
    redis.call('HSET', key, 'status', 'pending', 'dueAt', now,
      'lastError', 'the lease ran out: the sender stopped before it reported')
    redis.call('HDEL', key, 'holder')
    redis.call('ZADD', KEYS[1], now, id)
  end
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local claimed = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local key = ARGV[5] .. id
  if redis.call('EXISTS', key) == 1 then
    local claims = redis.call('HINCRBY', key, 'claims', 1)
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'status', 'sending', 'holder', ARGV[3] .. '#' .. claims)
    redis.call('ZADD', KEYS[2], now + lease, id)
    claimed[#claimed + 1] = redis.call('HGETALL', key)
  end
end
return claimed
