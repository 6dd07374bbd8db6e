--[[
  enable.lua: enable a scenario unless the tenant's maxActiveScenarios would be passed.

  KEYS[1]  scenarios hash of the tenant   (id → JSON)
  KEYS[2]  enabled set of the tenant
  KEYS[3]  quota hash of the tenant       (maxActiveScenarios)

  ARGV[1]  scenario id

  Returns   1  enabled
            2  was already enabled
           ERR.MAX_ACTIVE_SCENARIOS (-1)  maxActiveScenarios reached: nothing changed
           ERR.SCENARIO_NOT_FOUND (-5)    no such scenario
  (negative codes: lib-codes.lua)
]]
--- @include "lib-codes"

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return ERR.SCENARIO_NOT_FOUND
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return 2
end
local max = tonumber(redis.call('HGET', KEYS[3], 'maxActiveScenarios'))
if max and redis.call('SCARD', KEYS[2]) >= max then
  return ERR.MAX_ACTIVE_SCENARIOS
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
