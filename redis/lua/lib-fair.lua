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

-- redis.call(cmd, key, items...) in chunks of at most 1000 items (Lua's unpack has a stack
-- limit), `step` items at a time kept together (2 for field-value pairs); the replies of the
-- chunks are concatenated when they are tables.
local function chunked(cmd, key, items, step)
  local out = {}
  local size = 1000 - 1000 % (step or 1)
  for i = 1, #items, size do
    local r = redis.call(cmd, key, unpack(items, i, math.min(i + size - 1, #items)))
    if type(r) == 'table' then
      for _, v in ipairs(r) do out[#out + 1] = v end
    end
  end
  return out
end

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

-- Adds `by` to a run counter of STATE, removing the field at 0.
local function count(field, by)
  if redis.call('HINCRBY', STATE, field, by) <= 0 then redis.call('HDEL', STATE, field) end
end

-- A dispatched run goes back to being counted by no limit (released, or back to ready).
local function uncount(w)
  redis.call('ZREM', INFLIGHT, w.runId)
  count('rt:' .. w.tenant, -1)
  count('rs:' .. w.tenant .. '\n' .. (w.scenarioId or ''), -1)
end

local function refOf(w)
  return cjson.encode({ tenant = w.tenant, runId = w.runId, scenarioId = w.scenarioId })
end

-- Queues runs (ref JSONs) in their tenants' ready lists, at the back (or the front, in reverse:
-- the first ref ends up first); each once. A run pushed while it is dispatched (resumed before
-- its worker released it, a cron instant fired again) is marked `again`: its release queues it
-- once more. One HMGET, one HSET and one push per tenant for the whole batch.
local function push_many(refs, front)
  if #refs == 0 then return end
  local rs, ids = {}, {}
  for j, ref in ipairs(refs) do
    rs[j] = cjson.decode(ref)
    ids[j] = rs[j].runId
  end
  local olds = chunked('HMGET', WHERE, ids)
  local seen, set, byTenant, order = {}, {}, {}, {}
  for j, r in ipairs(rs) do
    local old = olds[j]
    if seen[r.runId] then
      -- the same run twice in one batch: once is enough
    elseif old then
      local o = cjson.decode(old)
      if o.b ~= 'r' and not o.again then
        o.again = true
        redis.call('HSET', WHERE, r.runId, cjson.encode(o))
      end
    else
      set[#set + 1] = r.runId
      set[#set + 1] = cjson.encode({ tenant = r.tenant, runId = r.runId, scenarioId = r.scenarioId, b = 'r' })
      local list = byTenant[r.tenant]
      if not list then
        list = {}
        byTenant[r.tenant] = list
        order[#order + 1] = r.tenant
      end
      list[#list + 1] = refs[j]
    end
    seen[r.runId] = true
  end
  if #set > 0 then chunked('HSET', WHERE, set, 2) end
  for _, t in ipairs(order) do
    local list = byTenant[t]
    if front then
      local rev = {}
      for j = #list, 1, -1 do rev[#rev + 1] = list[j] end
      chunked('LPUSH', BASE .. ':ready:' .. t, rev)
    else
      chunked('RPUSH', BASE .. ':ready:' .. t, list)
    end
    activate(t)
  end
end

local function push(ref, front)
  push_many({ ref }, front)
end

-- Releases runs that ended (or were given up): their limits count them no more. Idempotent.
-- Counters are changed once per tenant and scenario, whatever the number of runs.
local function release_many(ids)
  if #ids == 0 then return end
  local raws = chunked('HMGET', WHERE, ids)
  local gone, tenants, scens, again, seen = {}, {}, {}, {}, {}
  local order = {}
  for j, raw in ipairs(raws) do
    if raw and not seen[ids[j]] then
      seen[ids[j]] = true
      local w = cjson.decode(raw)
      -- still ready: it has not started, there is nothing to release
      if w.b ~= 'r' then
        gone[#gone + 1] = w.runId
        if not tenants[w.tenant] then order[#order + 1] = w.tenant end
        tenants[w.tenant] = (tenants[w.tenant] or 0) + 1
        local sk = w.tenant .. '\n' .. (w.scenarioId or '')
        scens[sk] = (scens[sk] or 0) + 1
        if w.again then again[#again + 1] = refOf(w) end
      end
    end
  end
  if #gone == 0 then return end
  chunked('HDEL', WHERE, gone)
  chunked('ZREM', INFLIGHT, gone)
  for t, c in pairs(tenants) do count('rt:' .. t, -c) end
  for sk, c in pairs(scens) do count('rs:' .. sk, -c) end
  push_many(again, false)
  for _, t in ipairs(order) do
    if redis.call('ZSCORE', PARKED, t) then activate(t) end
  end
end

-- The runs workers may hold: what live workers execute at once, plus an eighth (rounded down)
-- for the queue's own latency when there are many places. A worker releases a run before its
-- job completes, so the successor is in BullMQ when the place frees (BullMQ hands it over with
-- the completion); every run held beyond the places is one more start another tenant's run
-- waits behind. Also returns the number of live workers: each registers one place more than
-- its concurrency, its express place, which no single tenant may take (see pick).
local function budget(now)
  local cap, workers = 0, 0
  local rows = redis.call('HGETALL', WORKERS)
  for i = 1, #rows, 2 do
    local c, exp = string.match(rows[i + 1], '^(%d+) (%d+)$')
    if c and tonumber(exp) > now then
      cap = cap + tonumber(c)
      workers = workers + 1
    else
      redis.call('HDEL', WORKERS, rows[i])
    end
  end
  return cap + math.floor(cap / 8), workers
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

-- Whether a scenario has no limits (cached in `free` for one pick).
local function unlimited(free, t, s)
  if free[s] == nil then
    local lim = redis.call('HGET', STATE, 'ls:' .. t .. '\n' .. s)
    free[s] = (not lim) or lim == '0 0 0'
  end
  return free[s]
end

-- Starts `take` (a list of { ref, r }) of tenant t, whose virtual time is vt: counted by its
-- limits, in flight under job id b, and the tenant's virtual time grows by 1/weight each.
local function start(t, vt, weight, take, b, now, picked)
  local zadd, where, scens, why = {}, {}, {}, { 'why:' .. t }
  for _, c in ipairs(take) do
    local id, s = c.r.runId, c.r.scenarioId or ''
    zadd[#zadd + 1] = now
    zadd[#zadd + 1] = id
    where[#where + 1] = id
    where[#where + 1] = cjson.encode({ tenant = t, runId = id, scenarioId = c.r.scenarioId, b = b })
    if not scens[s] then why[#why + 1] = 'why:' .. t .. '\n' .. s end
    scens[s] = (scens[s] or 0) + 1
    picked[#picked + 1] = c.ref
  end
  redis.call('HDEL', STATE, unpack(why))
  redis.call('HINCRBY', STATE, 'rt:' .. t, #take)
  for s, c in pairs(scens) do redis.call('HINCRBY', STATE, 'rs:' .. t .. '\n' .. s, c) end
  chunked('ZADD', INFLIGHT, zadd, 2)
  chunked('HSET', WHERE, where, 2)
  local nvt = vt + #take / weight
  redis.call('HSET', STATE, 'vclock', vt + (#take - 1) / weight, 'vt:' .. t, nvt)
  if redis.call('LLEN', BASE .. ':ready:' .. t) == 0 then
    redis.call('ZREM', ACTIVE, t)
  else
    redis.call('ZADD', ACTIVE, nvt, t)
  end
end

-- Picks up to `most` runs to start, in weighted fair order, within the budget and every limit;
-- they become dispatched under job id `b`. Returns the picked refs and when a parked tenant
-- should be looked at again (0: none parked).
--
-- Express places (one per worker): only a run of a tenant that has no other run in flight
-- and no other run ready may take one. Such a run (an interactive request of a quiet tenant)
-- starts at once even while other tenants fill every other place, instead of waiting for one
-- of their runs to end; tenants with backlogs share the other places by weight. A tenant that
-- may take no place now is skipped for this pick (not parked: a release dispatches again).
-- When one tenant is the only one that may start runs, a run of its ready runs whose scenarios
-- have no limits starts in one go (one command each for the lot, not per run).
-- A run that takes an express place is a job of its own, `b` .. 'e' .. n, for the workers'
-- express lanes (queue.ts): the picked refs end with those runs, and their count is returned.
local function pick(most, b, now)
  for _, t in ipairs(redis.call('ZRANGEBYSCORE', PARKED, '-inf', now)) do activate(t) end
  local places, express = budget(now)
  local inflight = redis.call('ZCARD', INFLIGHT)
  local room = math.min(most, places - inflight)
  local shared = places - express - inflight
  local picked, full, nfull, nexpress = {}, {}, 0, 0
  while room > 0 do
    local heads = redis.call('ZRANGE', ACTIVE, 0, nfull, 'WITHSCORES')
    local t, vt
    for j = 1, #heads, 2 do
      if not full[heads[j]] then
        t, vt = heads[j], tonumber(heads[j + 1])
        break
      end
    end
    if not t then break end
    local ready = BASE .. ':ready:' .. t
    local conc, weight = string.match(redis.call('HGET', STATE, 'lt:' .. t) or '0 1', '^(%d+) (%d+)$')
    conc, weight = tonumber(conc) or 0, math.max(1, tonumber(weight) or 1)
    local running = num(redis.call('HGET', STATE, 'rt:' .. t))
    local k, express = 0, false
    if conc > 0 and running >= conc then
      redis.call('HSET', STATE, 'why:' .. t, 'tenant concurrency ' .. conc .. ' reached')
      park(t, now + PARK_MS)
    elseif shared > 0 then
      k = 1
      if redis.call('ZCARD', ACTIVE) == nfull + 1 then
        k = math.min(room, shared)
        if conc > 0 then k = math.min(k, conc - running) end
      end
    elseif running == 0 and redis.call('LLEN', ready) == 1 then
      k, express = 1, true
    else
      full[t] = true
      nfull = nfull + 1
    end
    if k > 0 then
      local refs = redis.call('LRANGE', ready, 0, math.max(k, WINDOW) - 1)
      local take, free = {}, {}
      for j = 1, math.min(k, #refs) do
        local r = cjson.decode(refs[j])
        if not unlimited(free, t, r.scenarioId or '') then break end
        take[#take + 1] = { ref = refs[j], r = r }
      end
      if #take > 0 then
        redis.call('LTRIM', ready, #take, -1)
      elseif #refs > 0 then
        -- the first ready run's scenario has limits: the first of the window they let start
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
        if chosen then
          redis.call('LREM', ready, 1, chosen.ref)
          local sk = t .. '\n' .. (chosen.r.scenarioId or '')
          local lim = redis.call('HGET', STATE, 'ls:' .. sk)
          local period = lim and tonumber(string.match(lim, ' (%d+)$')) or 0
          if period > 0 then
            local thr = BASE .. ':thr:' .. sk
            redis.call('ZADD', thr, now, chosen.r.runId)
            redis.call('PEXPIRE', thr, period)
          end
          take = { chosen }
        else
          park(t, wake or now + PARK_MS)
        end
      end
      if #refs == 0 then
        redis.call('ZREM', ACTIVE, t)
      elseif #take > 0 then
        if express then nexpress = nexpress + 1 end
        start(t, vt, weight, take, express and (b .. 'e' .. nexpress) or b, now, picked)
        room = room - #take
        shared = shared - #take
      end
    end
  end
  local next = redis.call('ZRANGE', PARKED, 0, 0, 'WITHSCORES')
  return picked, (#next > 0) and tonumber(next[2]) or 0, nexpress
end
