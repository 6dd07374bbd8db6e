--[[
  checkpoint.lua: durably record a run's progress at once: the tasks completed since the last
  checkpoint (appended in order), the run record, the state to resume from, and the billing
  of what those tasks spent (lib-settle.lua, prepended when loaded). Fenced by the owner
  token, so a worker that lost the run can neither write nor bill.

  KEYS[1]  run hash          (record, status, state, scenario, payload, owner)
  KEYS[2]  run tasks list
  KEYS[3]  quota hash        KEYS[4]  period hash        KEYS[5]  period per-scenario hash
  KEYS[6]  period per-day hash   KEYS[7]  billed set of the run   KEYS[8]  period leases hash
           (KEYS[3..8] are only used with a settlement)

  ARGV[1]  owner token ('' = no fencing: the caller is not a worker)
  ARGV[2]  run record JSON (without tasks)
  ARGV[3]  state JSON, or '' when the run has no pending work
  ARGV[4]  '1' when the run has ended: the run keys then expire after ARGV[5] seconds
  ARGV[5]  retention in seconds
  ARGV[6]  run status (kept in its own field for resume.lua)
  ARGV[7]  write id, unique per call: a call resent by the client after a lost connection
           (its first execution's reply lost) is recognised and not applied twice
  ARGV[8]  number of tasks n, then ARGV[9..8+n] the stored tasks, JSON each
  ARGV[9+n]  '1' when a settlement follows (its arguments from ARGV[10+n], see lib-settle.lua)

  Returns  { 1, crossed alert thresholds... }   (a resent call: { 1 }, nothing written again)
           -2  the run is owned by another worker: nothing written
           -3  the run does not exist (expired or never created): nothing written
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -3
end
if ARGV[1] ~= '' then
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if owner and owner ~= ARGV[1] then
    return -2
  end
end
if redis.call('HGET', KEYS[1], 'write') == ARGV[7] then
  return { 1 }
end
local n = tonumber(ARGV[8])
local i = 9
while i <= 8 + n do
  local j = math.min(i + 999, 8 + n)
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, j))
  i = j + 1
end
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'status', ARGV[6], 'write', ARGV[7])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'state')
else
  redis.call('HSET', KEYS[1], 'state', ARGV[3])
end
if ARGV[4] == '1' then
  local ttl = tonumber(ARGV[5])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
local out = { 1 }
if ARGV[9 + n] == '1' then
  local crossed = settle({ quota = KEYS[3], period = KEYS[4], scen = KEYS[5], days = KEYS[6], billed = KEYS[7], leases = KEYS[8] }, ARGV, 10 + n)
  for _, t in ipairs(crossed) do table.insert(out, t) end
  if ARGV[4] == '1' then
    -- the run has ended: its request ids in the period's leases hash can go
    redis.call('HDEL', KEYS[8], ARGV[10 + n] .. '#lease', ARGV[10 + n] .. '#settle')
  end
end
return out
