-- A delivery's stage entries (the stream <p>:{<id>}:stages) for the tracking streams to resume
-- from: add_stage(hash, stages, maxlen, stage, status, lver, only_if_changed) appends
-- {stage, status, lver} unless only_if_changed and the newest entry already has that stage,
-- records the entry's id as the hash field 'sid' and returns it (false when nothing was added).
local function add_stage(hash, stages, maxlen, stage, status, lver, only_if_changed)
  if only_if_changed then
    local newest = redis.call('XREVRANGE', stages, '+', '-', 'COUNT', 1)
    if newest[1] then
      local fields = newest[1][2]
      for i = 1, #fields, 2 do
        if fields[i] == 'stage' and fields[i + 1] == stage then
          return false
        end
      end
    end
  end
  local id = redis.call('XADD', stages, 'MAXLEN', maxlen, '*',
    'stage', stage, 'status', status, 'lver', lver)
  redis.call('HSET', hash, 'sid', id)
  return id
end
