--[[
  lib-ttl.lua: how long the scripts keep what they let expire, in seconds, named once
  (included by the scripts that set an expiry; it is not a script of its own). What the
  TypeScript side passes as ARGV is named in redis/ttl.ts.

  TTL.LEASES        a period's leases hash (actions held per run, and the request ids of
                    lease.lua and settle.lua): 40 days, so it outlives its month
  TTL.BILLED_ENDED  a run's billed set once the run has a final status (succeeded, failed,
                    rejected): an hour, for a late duplicate of its last settlement
]]
local TTL = {
  LEASES = 3456000,
  BILLED_ENDED = 3600,
}
