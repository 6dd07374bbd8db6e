--[[
  resume.lua: move a halted run back to `queued`, so that exactly one resume goes ahead.

  KEYS[1]  run hash   (status, resumeReq)

  ARGV[1]  request id: a call resent after a lost reply (the run still queued) is answered 1
           again, not ERR.RUN_NOT_HALTED (lib-request.lua, field 'resumeReq' of KEYS[1])

  Returns   1                       the run was halted and is now queued
           ERR.RUN_NOT_FOUND (-3)   the run does not exist
           ERR.RUN_NOT_HALTED (-4)  the run is not halted: nothing changed
  (negative codes: lib-codes.lua)
]]
--- @include "lib-codes"
--- @include "lib-request"

local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return ERR.RUN_NOT_FOUND
end
if status ~= 'halted' then
  if status == 'queued' and request_seen(KEYS[1], 'resumeReq', ARGV[1]) then
    return 1
  end
  return ERR.RUN_NOT_HALTED
end
redis.call('HSET', KEYS[1], 'status', 'queued')
request_done(KEYS[1], 'resumeReq', ARGV[1])
return 1
