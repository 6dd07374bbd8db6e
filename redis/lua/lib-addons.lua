--[[
  lib-addons.lua: add-ons with an expiry (SPEC §11), included by lib-lease.lua and
  lib-settle.lua (it is not a script of its own).

  expiringAddOns(periodKey, now)
    periodKey  the period hash's key; its add-on purchases are the list at periodKey .. ':addons'
               (same hash tag, see redis/keys.ts), one JSON object { actions, expires?, at } each
    now        ISO 8601 UTC (such strings compare in time order), or nil
  returns  the actions of the add-ons whose expiry is after `now` (0 without `now`); add-ons
           without an expiry are counted in the period hash's addOns instead
]]
local function expiringAddOns(periodKey, now)
  local sum = 0
  if not now then return 0 end
  for _, s in ipairs(redis.call('LRANGE', periodKey .. ':addons', 0, -1)) do
    local a = cjson.decode(s)
    if type(a.expires) == 'string' and a.expires > now then sum = sum + a.actions end
  end
  return sum
end
