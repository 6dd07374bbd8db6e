--[[
  lib-fair.lua: fair dispatch of one queue shard (included by dispatch.lua and sweep.lua; it is
  not a script of its own). Every key lives in the shard's hash slot: the fixed ones are the
  including script's KEYS[1..5], the per-tenant ready lists and per-scenario throttle windows
  are named from BASE (ARGV[1], the shard's tag followed by ':f'), as BullMQ names job keys.

  KEYS[1] active   zset  tenant → virtual time, tenants with ready runs that may start one
  KEYS[2] parked   zset  tenant → when to look at it again (ms): held by a limit
  KEYS[3] where    hash  runId → JSON { tenant, runId, scenarioId, b, again? }: every run queued
                         (b = 'r': in its tenant's ready list) or dispatched (b = the BullMQ job
                         id) and not released yet; a second push of a queued run is a no-op,
                         of a dispatched one sets `again` (queued once more when released)
  KEYS[4] inflight zset  runId → when dispatched (or last found in its job by sweep.lua), ms
  KEYS[5] state    hash  vt:<t> a tenant's virtual time, vclock, seq (job ids),
                         rt:<t> and rs:<t>\n<s> runs dispatched and not released (tenant, scenario),
                         lt:<t> "concurrency weight", ls:<t>\n<s> "concurrency limit periodMs"
                         (0: none), why:<t> and why:<t>\n<s> why the tenant's runs wait
  KEYS[6] workers  hash  worker id → "capacity expiresAtMs" (runs it executes at once)
  BASE:ready:<t>         list  a tenant's ready runs (ref JSON), oldest first
  BASE:thr:<t>\n<s>      zset  a scenario's starts in its throttle window (runId → ms)

  Weighted fair queueing: the active tenant with the least virtual time starts its next run and
  its virtual time grows by 1/weight. A tenant that becomes active starts at max(its own
  virtual time, vclock), vclock being the virtual time of the last run started: it is next (or
  among the next), and a tenant that was idle gains no credit for the time it was idle.
]]
local ACTIVE, PARKED, WHERE, INFLIGHT, STATE, WORKERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local BASE = ARGV[1]
-- How long a tenant held by a concurrency limit stays parked before it is looked at again
-- (a release of one of its runs wakes it at once; this is the backstop for changed limits).
local PARK_MS = 5000
-- Ready runs of a tenant looked at for one that no scenario limit holds.
local WINDOW = 16

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function num(v)
  return tonumber(v) or 0
end

local function vclock()
  return num(redis.call('HGET', STATE, 'vclock'))
end

-- Makes a tenant with ready runs active (also one that is parked: a new run may not be held).
local function activate(t)
  redis.call('ZREM', PARKED, t)
  if redis.call('ZSCORE', ACTIVE, t) then return end
  if redis.call('LLEN', BASE .. ':ready:' .. t) == 0 then return end
  redis.call('ZADD', ACTIVE, math.max(num(redis.call('HGET', STATE, 'vt:' .. t)), vclock()), t)
end

local function park(t, at)
  redis.call('ZREM', ACTIVE, t)
  redis.call('ZADD', PARKED, at, t)
end

-- A dispatched run goes back to being counted by no limit (released, or back to ready).
local function uncount(w)
  local t, sk = w.tenant, w.tenant .. '\n' .. (w.scenarioId or '')
  redis.call('ZREM', INFLIGHT, w.runId)
  if redis.call('HINCRBY', STATE, 'rt:' .. t, -1) <= 0 then redis.call('HDEL', STATE, 'rt:' .. t) end
  if redis.call('HINCRBY', STATE, 'rs:' .. sk, -1) <= 0 then redis.call('HDEL', STATE, 'rs:' .. sk) end
end

local function refOf(w)
  return cjson.encode({ tenant = w.tenant, runId = w.runId, scenarioId = w.scenarioId })
end

-- Queues a run (ref JSON) in its tenant's ready list, at the back (or the front); once. A run
-- pushed while it is dispatched (resumed before its worker released it, a cron instant fired
-- again) is marked `again`: its release queues it once more.
local function push(ref, front)
  local r = cjson.decode(ref)
  local w = { tenant = r.tenant, runId = r.runId, scenarioId = r.scenarioId, b = 'r' }
  if redis.call('HSETNX', WHERE, r.runId, cjson.encode(w)) == 0 then
    local old = cjson.decode(redis.call('HGET', WHERE, r.runId))
    if old.b ~= 'r' and not old.again then
      old.again = true
      redis.call('HSET', WHERE, r.runId, cjson.encode(old))
    end
    return false
  end
  redis.call(front and 'LPUSH' or 'RPUSH', BASE .. ':ready:' .. r.tenant, ref)
  activate(r.tenant)
  return true
end

-- Releases a run that ended (or was given up): its limits count it no more. Idempotent.
local function release(runId)
  local raw = redis.call('HGET', WHERE, runId)
  if not raw then return end
  local w = cjson.decode(raw)
  if w.b == 'r' then return end -- still ready: it has not started, there is nothing to release
  redis.call('HDEL', WHERE, runId)
  uncount(w)
  if w.again then push(refOf(w), false) end
  if redis.call('ZSCORE', PARKED, w.tenant) then activate(w.tenant) end
end

-- The runs workers may hold: what live workers execute at once, plus an eighth (rounded down)
-- for the queue's own latency when there are many places. A worker releases a run before its
-- job completes, so the successor is in BullMQ when the place frees (BullMQ hands it over with
-- the completion); every run held beyond the places is one more start another tenant's run
-- waits behind.
local function budget(now)
  local cap = 0
  local rows = redis.call('HGETALL', WORKERS)
  for i = 1, #rows, 2 do
    local c, exp = string.match(rows[i + 1], '^(%d+) (%d+)$')
    if c and tonumber(exp) > now then cap = cap + tonumber(c) else redis.call('HDEL', WORKERS, rows[i]) end
  end
  return cap + math.floor(cap / 8)
end

-- Whether the scenario's limits let one more of its runs start now; else why, and when to
-- look again (a throttle window's end; nil for a concurrency limit).
local function scenarioAllows(t, s, now)
  local sk = t .. '\n' .. s
  local lim = redis.call('HGET', STATE, 'ls:' .. sk)
  if not lim then return true end
  local conc, limit, period = string.match(lim, '^(%d+) (%d+) (%d+)$')
  conc, limit, period = tonumber(conc), tonumber(limit), tonumber(period)
  if conc > 0 and num(redis.call('HGET', STATE, 'rs:' .. sk)) >= conc then
    return false, 'scenario concurrency ' .. conc .. ' reached', nil
  end
  if limit > 0 then
    local thr = BASE .. ':thr:' .. sk
    redis.call('ZREMRANGEBYSCORE', thr, '-inf', now - period)
    if redis.call('ZCARD', thr) >= limit then
      local first = redis.call('ZRANGE', thr, 0, 0, 'WITHSCORES')
      return false, 'scenario throttle ' .. limit .. ' per ' .. period .. ' ms', tonumber(first[2]) + period
    end
  end
  return true
end

-- Picks up to `most` runs to start, in weighted fair order, within the budget and every limit;
-- they become dispatched under job id `b`. Returns the picked refs and when a parked tenant
-- should be looked at again (0: none parked).
local function pick(most, b, now)
  for _, t in ipairs(redis.call('ZRANGEBYSCORE', PARKED, '-inf', now)) do activate(t) end
  local room = math.min(most, budget(now) - redis.call('ZCARD', INFLIGHT))
  local picked = {}
  while room > 0 do
    local head = redis.call('ZRANGE', ACTIVE, 0, 0, 'WITHSCORES')
    if #head == 0 then break end
    local t, vt = head[1], tonumber(head[2])
    local ready = BASE .. ':ready:' .. t
    local conc, weight = string.match(redis.call('HGET', STATE, 'lt:' .. t) or '0 1', '^(%d+) (%d+)$')
    conc, weight = tonumber(conc) or 0, math.max(1, tonumber(weight) or 1)
    if conc > 0 and num(redis.call('HGET', STATE, 'rt:' .. t)) >= conc then
      redis.call('HSET', STATE, 'why:' .. t, 'tenant concurrency ' .. conc .. ' reached')
      park(t, now + PARK_MS)
    else
      redis.call('HDEL', STATE, 'why:' .. t)
      local refs = redis.call('LRANGE', ready, 0, WINDOW - 1)
      local chosen, wake = nil, nil
      for _, ref in ipairs(refs) do
        local r = cjson.decode(ref)
        local ok, why, at = scenarioAllows(t, r.scenarioId or '', now)
        if ok then
          chosen = { ref = ref, r = r }
          break
        end
        redis.call('HSET', STATE, 'why:' .. t .. '\n' .. (r.scenarioId or ''), why)
        if at and (not wake or at < wake) then wake = at end
      end
      if #refs == 0 then
        redis.call('ZREM', ACTIVE, t)
      elseif not chosen then
        park(t, wake or now + PARK_MS)
      else
        local r, s = chosen.r, chosen.r.scenarioId or ''
        local sk = t .. '\n' .. s
        redis.call('LREM', ready, 1, chosen.ref)
        redis.call('HDEL', STATE, 'why:' .. sk)
        redis.call('HINCRBY', STATE, 'rt:' .. t, 1)
        redis.call('HINCRBY', STATE, 'rs:' .. sk, 1)
        local lim = redis.call('HGET', STATE, 'ls:' .. sk)
        local period = lim and tonumber(string.match(lim, ' (%d+)$')) or 0
        if period > 0 then
          local thr = BASE .. ':thr:' .. sk
          redis.call('ZADD', thr, now, r.runId)
          redis.call('PEXPIRE', thr, period)
        end
        redis.call('ZADD', INFLIGHT, now, r.runId)
        redis.call('HSET', WHERE, r.runId, cjson.encode({ tenant = t, runId = r.runId, scenarioId = r.scenarioId, b = b }))
        redis.call('HSET', STATE, 'vclock', vt, 'vt:' .. t, vt + 1 / weight)
        if redis.call('LLEN', ready) == 0 then
          redis.call('ZREM', ACTIVE, t)
        else
          redis.call('ZADD', ACTIVE, vt + 1 / weight, t)
        end
        picked[#picked + 1] = chosen.ref
        room = room - 1
      end
    end
  end
  local next = redis.call('ZRANGE', PARKED, 0, 0, 'WITHSCORES')
  return picked, (#next > 0) and tonumber(next[2]) or 0
end
