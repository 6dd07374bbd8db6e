--[[
  sweep.lua: puts back dispatched runs whose BullMQ job never arrived (the process that picked
  them died, or lost Redis, between dispatch.lua and adding the job), and forgets runs that
  ended without being released. A run dispatched (or last checked) more than ARGV[3] ms ago
  is looked up in its job: the job's hash (BullMQ's `<ARGV[2]><job id>`, same hash slot) must
  exist and name the run in its data. If it does, the run is checked again ARGV[3] ms later;
  if not, it goes back to the front of its tenant's ready list, uncounted by its limits, and a
  later dispatch starts it again (a worker given a run that has ended does nothing).

  KEYS[1..6]  active, parked, where, inflight, state, workers (lib-fair.lua)

  ARGV[1]  BASE (lib-fair.lua)
  ARGV[2]  the key prefix of the shard's BullMQ jobs (`<tag>:runs:`)
  ARGV[3]  age, ms       ARGV[4]  most runs checked in this call
  ARGV[5]  the key prefix of the shard's express jobs (`<tag>:express:`): job ids with an 'e'

  Returns  the number of runs put back; never fails
]]
--- @include "lib-fair"

local now = now_ms()
local back = 0
local due = redis.call('ZRANGEBYSCORE', INFLIGHT, '-inf', now - tonumber(ARGV[3]), 'LIMIT', 0, tonumber(ARGV[4]))
for _, runId in ipairs(due) do
  local raw = redis.call('HGET', WHERE, runId)
  if not raw then
    redis.call('ZREM', INFLIGHT, runId)
  else
    local w = cjson.decode(raw)
    local jobs = string.find(w.b, 'e', 1, true) and ARGV[5] or ARGV[2]
    local data = redis.call('HGET', jobs .. w.b, 'data')
    if data and string.find(data, '"' .. runId .. '"', 1, true) then
      redis.call('ZADD', INFLIGHT, now, runId)
    else
      redis.call('HDEL', WHERE, runId)
      uncount(w)
      push(refOf(w), true)
      back = back + 1
    end
  end
end
return back
