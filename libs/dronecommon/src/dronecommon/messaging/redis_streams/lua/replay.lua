-- Replay dead letters: put a copy of each chosen dead letter's message (id, body, content type,
-- properties; a fresh delivery count) on the queue and delete the dead letter.
-- KEYS: dead-letter stream, stream. ARGV: dead-letter ids. Returns the ids replayed.
local out = {}
for _, id in ipairs(ARGV) do
  local e = redis.call('XRANGE', KEYS[1], id, id)
  if #e == 1 then
    local f = e[1][2]
    local copy = {}
    for i = 1, #f, 2 do
      local k = f[i]
      if k == 'message_id' or k == 'body' or k == 'content_type' or k == 'properties' then
        copy[#copy + 1] = k
        copy[#copy + 1] = f[i + 1]
      end
    end
    redis.call('XADD', KEYS[2], '*', unpack(copy))
    redis.call('XDEL', KEYS[1], id)
    out[#out + 1] = id
  end
end
return out
