--[[
  checkpoint.lua: durably record a run's progress at once: the tasks completed since the last
  checkpoint (appended in order), its new outputs (appended), the run record, the state to
  resume from (with the large, unchanging parts of new frames stored once, as fields of their
  own), and the billing of what those tasks spent (lib-settle.lua, included below).
  Then the task events are published, and the run's end on a channel of its own (waiting
  for a run's end need not receive every task). Fenced by the owner token, so a worker that
  lost the run can neither write nor bill.

  KEYS[1]  run hash          (record, status, state, scenario, payload, owner, live, write, f:<frame>)
  KEYS[2]  run tasks list    KEYS[3]  run outputs list
  KEYS[4]  quota hash        KEYS[5]  period hash        KEYS[6]  period per-scenario hash
  KEYS[7]  period per-day hash   KEYS[8]  billed set of the run   KEYS[9]  period leases hash
           (KEYS[4..9] are only used with a settlement)

  ARGV[1]  owner token ('' = no fencing: the caller is not a worker)
  ARGV[2]  run record JSON (without tasks, outputs and state)
  ARGV[3]  state JSON, or '' when the run has no pending work
  ARGV[4]  '1' when the run has ended: the run keys then expire after ARGV[5] seconds, and
           the run's billed set (KEYS[8]) TTL.BILLED_ENDED (an hour, lib-ttl.lua) after a
           final status (succeeded, failed, rejected): nothing settles for such a run again,
           and a late duplicate of its job finds it ended; a halted run keeps it (a resume
           continues it). The run's `live` field is cleared: its execution
           ended, it did not crash (see claim.lua)
  ARGV[5]  retention in seconds
  ARGV[6]  run status (kept in its own field for resume.lua)
  ARGV[7]  write id, unique per call: a call resent by the client after a lost connection
           (its first execution's reply lost) is recognised and not applied twice
           (lib-request.lua, field 'write' of KEYS[1]; checked after the fencing)
  ARGV[8]  task events channel ('' = publish nothing)   ARGV[9]  run event JSON ('' = none)
  ARGV[10] run id            ARGV[11] scenario id         ARGV[12] run events channel
  ARGV[13] n, the number of new tasks    ARGV[14] their JSONs joined by '\n' (one argument:
           JSON has no raw newline)
  ARGV[15] m, the number of new outputs  ARGV[16] their JSONs joined by '\n'
  then f, f (field, value) pairs of the hash; '1' when a settlement follows, then its
  arguments (see lib-settle.lua)

  Returns  { 1, crossed alert thresholds... }   (a resent call: { 1 }, nothing written again)
           ERR.RUN_OWNERSHIP_LOST (-2)  the run is owned by another worker: nothing written
           ERR.RUN_NOT_FOUND (-3)       the run does not exist (expired or never created):
                                        nothing written
  (negative codes: lib-codes.lua)
]]
--- @include "lib-codes"
--- @include "lib-settle"
--- @include "lib-request"
--- @include "lib-ttl"

if redis.call('EXISTS', KEYS[1]) == 0 then
  return ERR.RUN_NOT_FOUND
end
if ARGV[1] ~= '' then
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if owner and owner ~= ARGV[1] then
    return ERR.RUN_OWNERSHIP_LOST
  end
end
if request_seen(KEYS[1], 'write', ARGV[7]) then
  return { 1 }
end

-- the `count` items of `joined`, separated by '\n'
local function split(joined, count)
  local items, from = {}, 1
  for k = 1, count do
    local stop = string.find(joined, '\n', from, true) or (#joined + 1)
    items[k] = string.sub(joined, from, stop - 1)
    from = stop + 1
  end
  return items
end

local function append(key, items)
  for i = 1, #items, 1000 do
    redis.call('RPUSH', key, unpack(items, i, math.min(i + 999, #items)))
  end
end

local n = tonumber(ARGV[13])
local tasks = split(ARGV[14], n)
append(KEYS[2], tasks)
append(KEYS[3], split(ARGV[16], tonumber(ARGV[15])))
local at = 17
local f = tonumber(ARGV[at])
for k = 0, f - 1 do
  redis.call('HSET', KEYS[1], ARGV[at + 1 + 2 * k], ARGV[at + 2 + 2 * k])
end
at = at + 1 + 2 * f

redis.call('HSET', KEYS[1], 'record', ARGV[2], 'status', ARGV[6])
request_done(KEYS[1], 'write', ARGV[7])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'state')
else
  redis.call('HSET', KEYS[1], 'state', ARGV[3])
end
if ARGV[4] == '1' then
  redis.call('HDEL', KEYS[1], 'live')
  local ttl = tonumber(ARGV[5])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
local out = { 1 }
if ARGV[at] == '1' then
  local crossed = settle({ quota = KEYS[4], period = KEYS[5], scen = KEYS[6], days = KEYS[7], billed = KEYS[8], leases = KEYS[9] }, ARGV, at + 1)
  for _, t in ipairs(crossed) do table.insert(out, t) end
  if ARGV[4] == '1' then
    -- the run has ended: its request ids in the period's leases hash can go
    redis.call('HDEL', KEYS[9], ARGV[at + 1] .. '#lease', ARGV[at + 1] .. '#settle')
    if ARGV[6] ~= 'halted' then redis.call('EXPIRE', KEYS[8], TTL.BILLED_ENDED) end
  end
end

if ARGV[8] ~= '' then
  if n > 0 then
    redis.call('PUBLISH', ARGV[8], '[{"type":"tasks","runId":' .. cjson.encode(ARGV[10]) .. ',"scenarioId":' .. cjson.encode(ARGV[11]) .. ',"tasks":[' .. table.concat(tasks, ',') .. ']}]')
  end
  if ARGV[9] ~= '' then redis.call('PUBLISH', ARGV[12], '[' .. ARGV[9] .. ']') end
end
return out
