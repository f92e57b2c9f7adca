-- The local SMS sink: push a message once per message id, keep the newest N.
-- KEYS: list, seen marker. ARGV: message JSON, max length, retention s.
-- Returns 1 when pushed, 0 when this message id was pushed before.
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) == false then
  return 0
end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
