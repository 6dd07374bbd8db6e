--[[
  reserve.lua: reserve one action for one task, atomically and idempotently. (Runs spend in
  batches through lease.lua and settle.lua; this is the single-action path, for callers that
  bill one action at a time.)

  KEYS[1]  quota hash of the tenant        (monthlyActions, overage, alerts)
  KEYS[2]  period hash                     (used, overage, nonBillable, addOns, leased, m:runs, a:<t>)
  KEYS[3]  period per-scenario hash        (<sid>:runs, <sid>:actions)
  KEYS[4]  period per-day hash             (<date> → actions)
  KEYS[5]  billed set of the run           (task keys already billed)

  ARGV[1]  task key (unique within the run)
  ARGV[2]  billable: "1" or "0"
  ARGV[3]  trigger: "1" when this is the run's trigger action
  ARGV[4]  scenario id
  ARGV[5]  local date YYYY-MM-DD
  ARGV[6]  now, ISO 8601 (recorded on alerts)
  ARGV[7]  default monthlyActions when the tenant has no quota
  ARGV[8]  seconds to keep the billed set
  ARGV[9]  default alerts as JSON (e.g. [0.9,1])

  Returns  { code, used, limit, crossed thresholds... }
            code  1  reserved
            code  2  already billed (a redelivered task): nothing changed
            code -1  quota exhausted (overage halt): nothing changed
]]
if redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 1 then
  return { 2, 0, 0 }
end

local q = redis.call('HMGET', KEYS[1], 'monthlyActions', 'overage', 'alerts')
local monthly = tonumber(q[1]) or tonumber(ARGV[7])
local overageMode = q[2] or 'halt'
local alerts = cjson.decode(q[3] or ARGV[9])

local crossed = {}
if ARGV[2] == '1' then
  local p = redis.call('HMGET', KEYS[2], 'used', 'addOns', 'leased')
  local used = tonumber(p[1]) or 0
  local limit = monthly + (tonumber(p[2]) or 0)
  -- actions leased to runs (lease.lua) are spoken for
  if used + (tonumber(p[3]) or 0) >= limit then
    if overageMode ~= 'allow' then
      return { -1, used, limit }
    end
    redis.call('HINCRBY', KEYS[2], 'overage', 1)
  end
  used = redis.call('HINCRBY', KEYS[2], 'used', 1)
  redis.call('HINCRBY', KEYS[3], ARGV[4] .. ':actions', 1)
  redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
  if ARGV[3] == '1' then
    redis.call('HINCRBY', KEYS[3], ARGV[4] .. ':runs', 1)
  end
  for _, t in ipairs(alerts) do
    if used >= math.ceil(t * monthly) then
      if redis.call('HSETNX', KEYS[2], 'a:' .. tostring(t), ARGV[6]) == 1 then
        table.insert(crossed, tostring(t))
      end
    end
  end
else
  redis.call('HINCRBY', KEYS[2], 'nonBillable', 1)
end
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[2], 'm:runs', 1)
end
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[8]))

local used = tonumber(redis.call('HGET', KEYS[2], 'used')) or 0
local out = { 1, used, monthly }
for _, t in ipairs(crossed) do table.insert(out, t) end
return out
