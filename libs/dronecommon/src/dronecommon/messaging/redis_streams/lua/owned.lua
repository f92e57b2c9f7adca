-- Prepended to the scripts that settle or renew a delivery: true when the entry is in the
-- group's pending list, owned by the consumer, with the lock token (times delivered) it was
-- given. A receiver whose lock was taken over must not settle someone else's delivery.
local function owned(stream, group, id, consumer, token)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  return #p == 1 and p[1][2] == consumer and p[1][4] == tonumber(token)
end
