--[[
  resume.lua: move a halted run back to `queued`, so that exactly one resume goes ahead.

  KEYS[1]  run hash   (status, resumeReq)

  ARGV[1]  request id: a call resent after a lost reply is answered 1 again, not -4

  Returns   1  the run was halted and is now queued
           -3  the run does not exist
           -4  the run is not halted: nothing changed
]]
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return -3
end
if status ~= 'halted' then
  if status == 'queued' and redis.call('HGET', KEYS[1], 'resumeReq') == ARGV[1] then
    return 1
  end
  return -4
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'resumeReq', ARGV[1])
return 1
