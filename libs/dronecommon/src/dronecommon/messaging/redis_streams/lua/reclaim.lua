-- Take over expired locks: entries idle longer than the lock duration move to this consumer
-- (which counts a delivery), each with its times-delivered as the new lock token.
-- KEYS: stream. ARGV: group, consumer, min idle ms, cursor, count.
-- Returns {next cursor, {{id, {field, value, ...}, times delivered}, ...}}.
local res = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
for _, entry in ipairs(res[2]) do
  if entry and entry[2] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    if #p == 1 then out[#out + 1] = {entry[1], entry[2], p[1][4]} end
  end
end
return {res[1], out}
