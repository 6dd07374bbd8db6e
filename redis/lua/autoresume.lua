--[[
  autoresume.lua: one step of auto-resume for a tenant (see engine/auto-resume.ts): record a
  run's end, then, when resumeHalted is not 'manual', no run has the tenant's turn and actions
  are available, take the oldest halted run and give it the turn. Taking the run and the turn
  is atomic, so each halted run is resumed once whatever the number of processes.
  expiringAddOns comes with lib-lease.lua (from lib-addons.lua).

  KEYS[1]  halted runs zset    (runId → the run's start, ms)
  KEYS[2]  turn string         (the run being resumed; it expires after ARGV[6] ms, should the
                                process resuming it die)
  KEYS[3]  quota hash          (monthlyActions, overage, resumeHalted)
  KEYS[4]  current period hash (used, addOns, leased; and its ':addons' list)

  ARGV[1]  now, ISO 8601 UTC           ARGV[2]  default monthlyActions
  ARGV[3]  the run that ended ('' = none): it gives up the turn if it had it
  ARGV[4]  '1' when that run halted for quota (it joins KEYS[1] with score ARGV[5])
  ARGV[5]  its score           ARGV[6]  turn lifetime, ms

  Returns  the id of the run to resume now, or '' (none); never fails
]]
--- @include "lib-lease"

if ARGV[3] ~= '' then
  if ARGV[4] == '1' then redis.call('ZADD', KEYS[1], ARGV[5], ARGV[3]) end
  if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
end
local q = redis.call('HMGET', KEYS[3], 'monthlyActions', 'overage', 'resumeHalted')
if q[3] == 'manual' or redis.call('EXISTS', KEYS[2]) == 1 then
  return ''
end
if q[2] ~= 'allow' then
  local p = redis.call('HMGET', KEYS[4], 'used', 'addOns', 'leased')
  local limit = (tonumber(q[1]) or tonumber(ARGV[2])) + (tonumber(p[2]) or 0) + expiringAddOns(KEYS[4], ARGV[1])
  if limit - (tonumber(p[1]) or 0) - (tonumber(p[3]) or 0) <= 0 then
    return ''
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
if #first == 0 then
  return ''
end
redis.call('ZREM', KEYS[1], first[1])
redis.call('SET', KEYS[2], first[1], 'PX', tonumber(ARGV[6]))
return first[1]
