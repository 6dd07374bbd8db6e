--[[
  dispatch.lua: the fair dispatcher of one queue shard (see lib-fair.lua for its keys and
  order). In one call: record the limits of the tenants and scenarios being pushed, register a
  worker's capacity, release ended runs, push new ready runs, then pick the runs to start now.
  The caller adds the picked runs to BullMQ as one job under the returned job id (re-adding it
  is a no-op; a pick whose job never arrives is put back by sweep.lua). BullMQ so never holds
  more than about what workers can execute: a tenant that becomes active is among the next to
  start, whatever backlog others have in their ready lists.

  KEYS[1..6]  active, parked, where, inflight, state, workers (lib-fair.lua)

  ARGV[1]  BASE: the shard's tag followed by ':f' (names the ready lists and throttle windows)
  ARGV[2]  most runs to pick (0: pick none)
  ARGV[3]  the job id prefix of this shard (the job id is it followed by a sequence number)
  ARGV[4]  w worker registrations, then w triples: worker id, its capacity (0: it leaves; its
           concurrency plus its express place, see lib-fair.lua's pick), its lifetime ms
  then n limit fields: n, then n pairs: field (lt:<t> or ls:<t>\n<s>), value (see lib-fair.lua);
           a field whose value changes wakes its tenant, should it be parked
  then m ended runs: m, then m run ids
  then k runs to push: k, then k ref JSONs { tenant, runId, scenarioId }, oldest first

  Returns  { job id ('' when nothing was picked), when to call again for a parked tenant
             (ms since the epoch, 0: none), e, picked ref JSON, ... }; never fails. The last
             e refs took express places: each is a job of its own, under the job id followed
             by 'e' and its number (1..e), for the express queue
]]
--- @include "lib-fair"

local now = now_ms()
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  if tonumber(ARGV[i + 1]) > 0 then
    redis.call('HSET', WORKERS, ARGV[i], ARGV[i + 1] .. ' ' .. (now + tonumber(ARGV[i + 2])))
  else
    redis.call('HDEL', WORKERS, ARGV[i])
  end
  i = i + 3
end
local n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  -- A changed limit wakes its tenant: the runs it held may start now.
  if redis.call('HGET', STATE, ARGV[i]) ~= ARGV[i + 1] then
    redis.call('HSET', STATE, ARGV[i], ARGV[i + 1])
    activate(string.match(string.sub(ARGV[i], 4), '^[^\n]*'))
  end
  i = i + 2
end
local m = tonumber(ARGV[i])
local ended = {}
for j = i + 1, i + m do ended[#ended + 1] = ARGV[j] end
release_many(ended)
i = i + m + 1
local k = tonumber(ARGV[i])
local refs = {}
for j = i + 1, i + k do refs[#refs + 1] = ARGV[j] end
push_many(refs, false)

local most = tonumber(ARGV[2])
local b = ''
local picked, wake, nexpress = {}, 0, 0
if most > 0 then
  b = ARGV[3] .. redis.call('HINCRBY', STATE, 'seq', 1)
  picked, wake, nexpress = pick(most, b, now)
  if #picked == 0 then
    b = ''
  end
else
  local next = redis.call('ZRANGE', PARKED, 0, 0, 'WITHSCORES')
  wake = (#next > 0) and tonumber(next[2]) or 0
end
local out = { b, wake, nexpress }
for _, ref in ipairs(picked) do out[#out + 1] = ref end
return out
