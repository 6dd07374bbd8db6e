--[[
  settle.lua: bill what a run spent since its last settlement (see lib-settle.lua, which is
  prepended to this file when it is loaded).

  KEYS[1] quota hash   KEYS[2] period hash   KEYS[3] period per-scenario hash
  KEYS[4] period per-day hash   KEYS[5] billed set of the run   KEYS[6] period leases hash
  ARGV    the settlement arguments of lib-settle.lua, from ARGV[1]

  Returns  the alert thresholds crossed now (strings); never fails
]]
return settle({ quota = KEYS[1], period = KEYS[2], scen = KEYS[3], days = KEYS[4], billed = KEYS[5], leases = KEYS[6] }, ARGV, 1)
