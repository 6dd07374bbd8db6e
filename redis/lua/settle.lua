--[[
  settle.lua: bill what a run spent since its last settlement (the settle function of
  lib-settle.lua, included below).

  KEYS[1] quota hash   KEYS[2] period hash   KEYS[3] period per-scenario hash
  KEYS[4] period per-day hash   KEYS[5] billed set of the run   KEYS[6] period leases hash
  ARGV[1] request id, unique per call: a call resent after a lost reply is not applied twice
          and answers {} (lib-request.lua, field '<runId>#settle' of KEYS[6])
  ARGV[2..] the settlement arguments of lib-settle.lua

  Returns  the alert thresholds crossed now (strings); never fails
]]
--- @include "lib-settle"
--- @include "lib-request"
--- @include "lib-ttl"

local field = ARGV[2] .. '#settle'
if request_seen(KEYS[6], field, ARGV[1]) then
  return {}
end
request_done(KEYS[6], field, ARGV[1], nil, TTL.LEASES)
return settle({ quota = KEYS[1], period = KEYS[2], scen = KEYS[3], days = KEYS[4], billed = KEYS[5], leases = KEYS[6] }, ARGV, 2)
