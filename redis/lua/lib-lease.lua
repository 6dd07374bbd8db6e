--[[
  lib-lease.lua: the grant function, included by lease.lua and claim.lua (it is not a script
  of its own). In halt mode a grant is held against the limit and is at most a quarter of what
  is left (at least 1), so runs near the limit share the remainder rather than one run
  holding it all; in allow mode every request is granted in full and nothing is held.

  grant(k, runId, want, defaultMonthly, now)
    k.quota, k.period, k.leases   key names (quota hash, period hash, period leases hash)
    now   ISO 8601 UTC instant (optional): add-ons with an expiry after it count too (see
          expiringAddOns); without it only add-ons without expiry (the period's addOns) count
  returns  { granted, held (1|0), othersHold (1|0: with granted 0, other runs hold actions) }
]]
--- @include "lib-ttl"

--- @include "lib-addons"

local function grant(k, runId, want, defaultMonthly, now)
  local q = redis.call('HMGET', k.quota, 'monthlyActions', 'overage')
  if q[2] == 'allow' then
    return { want, 0, 0 }
  end
  local monthly = tonumber(q[1]) or defaultMonthly
  local p = redis.call('HMGET', k.period, 'used', 'addOns', 'leased')
  local used, addOns, leased = tonumber(p[1]) or 0, (tonumber(p[2]) or 0) + expiringAddOns(k.period, now), tonumber(p[3]) or 0
  local avail = monthly + addOns - used - leased
  if avail <= 0 then
    local mine = tonumber(redis.call('HGET', k.leases, runId)) or 0
    return { 0, 1, (leased - mine > 0) and 1 or 0 }
  end
  local g = math.min(want, math.max(1, math.floor(avail / 4)))
  redis.call('HINCRBY', k.period, 'leased', g)
  redis.call('HINCRBY', k.leases, runId, g)
  redis.call('EXPIRE', k.leases, TTL.LEASES)
  return { g, 1, 0 }
end
