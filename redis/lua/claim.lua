--[[
  claim.lua: a worker takes over a run, and gets everything it needs to execute it. The new
  owner token fences every later write of the previous owner (checkpoint.lua, lease.lua), and
  the actions the run held are given back to the pool (the new owner leases afresh; the old
  lease would otherwise be lost).

  Crashed executions (poison runs, SPEC §10). The run hash's `live` field holds the token of
  the owner executing the run; that owner clears it when it stops executing the run without
  dying: when the run ends (checkpoint.lua with ARGV[4] = '1', halted included) or when it gives
  the run up alive (release.lua: ownership lost, an infrastructure error, a worker told to
  stop). So a claim that finds `live` set finds a previous execution that neither ended nor
  released the run: its worker process died (or lost Redis for longer than its job lock, which
  is indistinguishable from here), and `crashes` is incremented. A claim that does not count:
  the first one, one of a run that never started (a batch job redelivered before its worker
  claimed it, `live` unset), a resume of a halted run (its end cleared `live`), and a claim of
  an ended run (nothing is executed, `live` is left alone). When `crashes` has reached ARGV[5]
  the run is not handed out: '#poisoned' is returned, no lease is granted (the old one is
  returned as always), and the caller finishes it as failed with WORKER_CRASHED without
  executing it. The count lives in the run hash, so it holds across processes.

  KEYS[1]  run hash          KEYS[2]  run outputs list
  KEYS[3]  leases hash of the current period    KEYS[4]  current period hash
  KEYS[5]  leases hash of the previous period   KEYS[6]  previous period hash
  KEYS[7]  the scenario's variables hash (or KEYS[1] when the scenario is not known)
  KEYS[8]  the tenant's quota hash

  ARGV[1]  new owner token
  ARGV[2]  run id
  ARGV[3]  actions to lease for the run in the current period (0: none), see lib-lease.lua
  ARGV[4]  default monthlyActions
  ARGV[5]  crash limit: the crashed executions after which the run is given up (0: give it up now)

  Returns  { the run hash as field, value, ..., '#outputs', outputs JSON array,
             '#vars', the variables hash as a JSON object of JSON strings (when KEYS[7] is one),
             '#lease', the grant as JSON [granted, held, othersHold] (when ARGV[3] > 0 and the
             run is billable and not poisoned), '#crashes', crashed executions so far,
             '#poisoned', '1' when the run is given up (see above) }
           ERR.RUN_NOT_FOUND (-3)  the run does not exist
  (negative codes: lib-codes.lua)
]]
--- @include "lib-codes"
--- @include "lib-lease"

if redis.call('EXISTS', KEYS[1]) == 0 then
  return ERR.RUN_NOT_FOUND
end
local status = redis.call('HGET', KEYS[1], 'status')
local active = status == 'queued' or status == 'running'
local crashes = tonumber(redis.call('HGET', KEYS[1], 'crashes')) or 0
if active then
  if redis.call('HEXISTS', KEYS[1], 'live') == 1 then
    crashes = redis.call('HINCRBY', KEYS[1], 'crashes', 1)
  end
  redis.call('HSET', KEYS[1], 'live', ARGV[1])
end
local poisoned = active and crashes >= tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
for _, pair in ipairs({ { KEYS[3], KEYS[4] }, { KEYS[5], KEYS[6] } }) do
  local held = tonumber(redis.call('HGET', pair[1], ARGV[2])) or 0
  if held > 0 then
    redis.call('HINCRBY', pair[2], 'leased', -held)
  end
  redis.call('HDEL', pair[1], ARGV[2])
end
local out = redis.call('HGETALL', KEYS[1])
out[#out + 1] = '#outputs'
out[#out + 1] = '[' .. table.concat(redis.call('LRANGE', KEYS[2], 0, -1), ',') .. ']'
if KEYS[7] ~= KEYS[1] then
  local vars = redis.call('HGETALL', KEYS[7])
  local parts = {}
  for j = 1, #vars, 2 do parts[#parts + 1] = cjson.encode(vars[j]) .. ':' .. cjson.encode(vars[j + 1]) end
  out[#out + 1] = '#vars'
  out[#out + 1] = '{' .. table.concat(parts, ',') .. '}'
end
out[#out + 1] = '#crashes'
out[#out + 1] = tostring(crashes)
if poisoned then
  out[#out + 1] = '#poisoned'
  out[#out + 1] = '1'
end
local want = tonumber(ARGV[3])
if want > 0 and active and not poisoned then
  local record = cjson.decode(redis.call('HGET', KEYS[1], 'record'))
  if record.billable ~= false then
    out[#out + 1] = '#lease'
    out[#out + 1] = cjson.encode(grant({ quota = KEYS[8], period = KEYS[4], leases = KEYS[3] }, ARGV[2], want, tonumber(ARGV[4])))
  end
end
return out
