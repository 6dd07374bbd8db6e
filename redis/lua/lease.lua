--[[
  lease.lua: grant a run a batch of actions from the tenant's period pool.

  KEYS[1]  quota hash          (monthlyActions, overage)
  KEYS[2]  period hash         (used, addOns, leased)
  KEYS[3]  period leases hash  (runId → actions held)
  KEYS[4]  run hash            (owner), for fencing

  ARGV[1]  run id
  ARGV[2]  actions wanted
  ARGV[3]  default monthlyActions
  ARGV[4]  owner token ('' = not fenced)
  ARGV[5]  request id, unique per call: a call resent after a lost reply returns the first
           call's grant instead of leasing again (lib-request.lua, field '<runId>#lease' of
           KEYS[3])
  ARGV[6]  now, ISO 8601 UTC: add-ons expiring after it count toward the limit (optional)

  Returns  { granted, held, othersHold }
             granted     actions granted (0 when none are left)
             held        1 when they are held against the limit (halt), 0 in allow mode
             othersHold  with granted 0: 1 when other runs hold unused actions (wait, don't halt)
           ERR.RUN_OWNERSHIP_LOST (-2)  the run is owned by another worker: nothing leased
  (negative codes: lib-codes.lua). The grant itself is lib-lease.lua's.
]]
--- @include "lib-codes"
--- @include "lib-lease"
--- @include "lib-request"
--- @include "lib-ttl"

if ARGV[4] ~= '' then
  local owner = redis.call('HGET', KEYS[4], 'owner')
  if owner and owner ~= ARGV[4] then return ERR.RUN_OWNERSHIP_LOST end
end
local field = ARGV[1] .. '#lease'
local seen = request_seen(KEYS[3], field, ARGV[5])
if seen then return seen end
local out = grant({ quota = KEYS[1], period = KEYS[2], leases = KEYS[3] }, ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[6])
return request_done(KEYS[3], field, ARGV[5], out, TTL.LEASES)
