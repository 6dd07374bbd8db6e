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
           call's grant instead of leasing again (field '<runId>#lease' of KEYS[3])

  Returns  { granted, held, othersHold }
             granted     actions granted (0 when none are left)
             held        1 when they are held against the limit (halt), 0 in allow mode
             othersHold  with granted 0: 1 when other runs hold unused actions (wait, don't halt)
           -2 when the run is owned by another worker
  In halt mode a grant is at most a quarter of what is left (at least 1), so runs near the
  limit share the remainder rather than one run holding it all.
]]
if ARGV[4] ~= '' then
  local owner = redis.call('HGET', KEYS[4], 'owner')
  if owner and owner ~= ARGV[4] then return -2 end
end
local last = redis.call('HGET', KEYS[3], ARGV[1] .. '#lease')
if last then
  local sep = string.find(last, '|', 1, true)
  if string.sub(last, 1, sep - 1) == ARGV[5] then
    return cjson.decode(string.sub(last, sep + 1))
  end
end
local function answer(out)
  redis.call('HSET', KEYS[3], ARGV[1] .. '#lease', ARGV[5] .. '|' .. cjson.encode(out))
  redis.call('EXPIRE', KEYS[3], 3456000)
  return out
end
local q = redis.call('HMGET', KEYS[1], 'monthlyActions', 'overage')
local want = tonumber(ARGV[2])
if q[2] == 'allow' then
  return answer({ want, 0, 0 })
end
local monthly = tonumber(q[1]) or tonumber(ARGV[3])
local p = redis.call('HMGET', KEYS[2], 'used', 'addOns', 'leased')
local used, addOns, leased = tonumber(p[1]) or 0, tonumber(p[2]) or 0, tonumber(p[3]) or 0
local avail = monthly + addOns - used - leased
if avail <= 0 then
  local mine = tonumber(redis.call('HGET', KEYS[3], ARGV[1])) or 0
  return answer({ 0, 1, (leased - mine > 0) and 1 or 0 })
end
local grant = math.min(want, math.max(1, math.floor(avail / 4)))
redis.call('HINCRBY', KEYS[2], 'leased', grant)
redis.call('HINCRBY', KEYS[3], ARGV[1], grant)
return answer({ grant, 1, 0 })
