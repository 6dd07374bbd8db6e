--[[
  claim.lua: a worker takes over a run, and gets everything it needs to execute it. The new
  owner token fences every later write of the previous owner (checkpoint.lua, lease.lua), and
  the actions the run held are given back to the pool (the new owner leases afresh; the old
  lease would otherwise be lost).

  KEYS[1]  run hash          KEYS[2]  run outputs list
  KEYS[3]  leases hash of the current period    KEYS[4]  current period hash
  KEYS[5]  leases hash of the previous period   KEYS[6]  previous period hash
  KEYS[7]  the scenario's variables hash (or KEYS[1] when the scenario is not known)
  KEYS[8]  the tenant's quota hash

  ARGV[1]  new owner token
  ARGV[2]  run id
  ARGV[3]  actions to lease for the run in the current period (0: none), see lib-lease.lua
  ARGV[4]  default monthlyActions

  Returns  { the run hash as field, value, ..., '#outputs', outputs JSON array,
             '#vars', the variables hash as a JSON object of JSON strings (when KEYS[7] is one),
             '#lease', the grant as JSON [granted, held, othersHold] (when ARGV[3] > 0 and the
             run is billable) }
           ERR.RUN_NOT_FOUND (-3)  the run does not exist
  (negative codes: lib-codes.lua)
]]
--- @include "lib-codes"
--- @include "lib-lease"

if redis.call('EXISTS', KEYS[1]) == 0 then
  return ERR.RUN_NOT_FOUND
end
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
local want = tonumber(ARGV[3])
local status = redis.call('HGET', KEYS[1], 'status')
if want > 0 and (status == 'queued' or status == 'running') then
  local record = cjson.decode(redis.call('HGET', KEYS[1], 'record'))
  if record.billable ~= false then
    out[#out + 1] = '#lease'
    out[#out + 1] = cjson.encode(grant({ quota = KEYS[8], period = KEYS[4], leases = KEYS[3] }, ARGV[2], want, tonumber(ARGV[4])))
  end
end
return out
