--[[
  lib-settle.lua: the settlement function, included by settle.lua and checkpoint.lua (it is
  not a script of its own). It bills each entry whose task key is not yet in the run's billed
  set, returns held actions to the pool, and records alerts once per threshold per period.

  settle(k, a, i)
    k.quota, k.period, k.scen, k.days, k.billed, k.leases   key names
    a  the ARGV table; settlement arguments start at index i:
      a[i]    run id               a[i+1]  scenario id
      a[i+2]  billable '1'|'0'     a[i+3]  held actions spent (leave the lease)
      a[i+4]  held actions to give back
      a[i+5]  now, ISO 8601        a[i+6]  default monthlyActions
      a[i+7]  default alerts JSON  a[i+8]  seconds to keep the billed set
      a[i+9]  number of entries n
      a[i+10] the n entries as one JSON array of 3n strings: task key, node id, date of each
              (one argument, not 3n); the node id '$trigger' is the trigger's action (it
              counts a run), '' counts for no node
  returns  a table of the alert thresholds crossed now (as strings)
  Per node (billable runs only), one HINCRBY of '<scenario>:n:<node>' in k.scen per distinct
  node: by the node's actions billed now, plus 2^32 the first time the run bills the node
  (member 'n:<node>' of the run's billed set, which task keys never equal, is absent), so the
  field is runs × 2^32 + actions. The trigger's ('$trigger') are '<scenario>:runs'.
  The limit is monthlyActions + addOns + the add-ons with an expiry after `now` (a[i+5]).
]]

--- @include "lib-addons"

local function settle(k, a, i)
  local runId, sid, billable = a[i], a[i + 1], a[i + 2] == '1'
  local heldUsed, release = tonumber(a[i + 3]), tonumber(a[i + 4])
  local now = a[i + 5]
  local n = tonumber(a[i + 9])
  local e = n > 0 and cjson.decode(a[i + 10]) or {}
  local q = redis.call('HMGET', k.quota, 'monthlyActions', 'alerts')
  local monthly = tonumber(q[1]) or tonumber(a[i + 6])
  local alerts = cjson.decode(q[2] or a[i + 7])
  local p = redis.call('HMGET', k.period, 'used', 'addOns')
  local used = tonumber(p[1]) or 0
  local limit = monthly + (tonumber(p[2]) or 0) + expiringAddOns(k.period, now)
  -- Counters are summed here and written once each (per day, per scenario), not per action.
  -- Which task keys (and node markers) are new is asked once (SMISMEMBER), and the new ones
  -- added once (SADD), not per entry.
  local billed, actions, runs, nonBillable, overage = 0, 0, 0, 0, 0
  local days, nodes, nodeOrder = {}, {}, {}
  local members = {}
  for j = 0, n - 1 do members[j + 1] = e[1 + 3 * j] end
  local known = {}
  for from = 1, n, 1000 do
    local m = redis.call('SMISMEMBER', k.billed, unpack(members, from, math.min(from + 999, n)))
    for j = 1, #m do known[from + j - 1] = m[j] == 1 end
  end
  local added, fresh = {}, {}
  for j = 0, n - 1 do
    local key, node, date = e[1 + 3 * j], e[2 + 3 * j], e[3 + 3 * j]
    local trigger = node == '$trigger'
    if not known[j + 1] and not fresh[key] then
      fresh[key] = true
      added[#added + 1] = key
      billed = billed + 1
      if billable then
        used = used + 1
        actions = actions + 1
        if used > limit then overage = overage + 1 end
        days[date] = (days[date] or 0) + 1
        if node ~= '' and not trigger then
          if not nodes[node] then nodeOrder[#nodeOrder + 1] = node end
          nodes[node] = (nodes[node] or 0) + 1
        end
      else
        nonBillable = nonBillable + 1
      end
      if trigger then runs = runs + 1 end
    end
  end
  if actions > 0 then redis.call('HINCRBY', k.scen, sid .. ':actions', actions) end
  if #nodeOrder > 0 then
    local markers, m = {}, {}
    for j, node in ipairs(nodeOrder) do markers[j] = 'n:' .. node end
    for from = 1, #markers, 1000 do
      for _, v in ipairs(redis.call('SMISMEMBER', k.billed, unpack(markers, from, math.min(from + 999, #markers)))) do m[#m + 1] = v end
    end
    for j, node in ipairs(nodeOrder) do
      local first = 0
      if m[j] == 0 then
        first = 1
        added[#added + 1] = markers[j]
      end
      redis.call('HINCRBY', k.scen, sid .. ':n:' .. node, nodes[node] + first * 4294967296)
    end
  end
  for from = 1, #added, 1000 do
    redis.call('SADD', k.billed, unpack(added, from, math.min(from + 999, #added)))
  end
  for date, count in pairs(days) do redis.call('HINCRBY', k.days, date, count) end
  if overage > 0 then redis.call('HINCRBY', k.period, 'overage', overage) end
  if nonBillable > 0 then redis.call('HINCRBY', k.period, 'nonBillable', nonBillable) end
  if runs > 0 then
    if billable then redis.call('HINCRBY', k.scen, sid .. ':runs', runs) end
    redis.call('HINCRBY', k.period, 'm:runs', runs)
  end
  if billed > 0 then
    redis.call('EXPIRE', k.billed, tonumber(a[i + 8]))
    if billable then redis.call('HSET', k.period, 'used', used) end
  end
  local back = heldUsed + release
  if back > 0 then
    redis.call('HINCRBY', k.period, 'leased', -back)
    if redis.call('HINCRBY', k.leases, runId, -back) <= 0 then redis.call('HDEL', k.leases, runId) end
  end
  local crossed = {}
  if billable and billed > 0 then
    for _, t in ipairs(alerts) do
      if used >= math.ceil(t * monthly) and redis.call('HSETNX', k.period, 'a:' .. tostring(t), now) == 1 then
        table.insert(crossed, tostring(t))
      end
    end
  end
  return crossed
end
