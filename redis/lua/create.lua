--[[
  create.lua: persists new runs of one tenant at once (a trigger batch), each only if it does
  not exist yet: a run that exists (a cron instant fired by another scheduler, or this call
  resent after a lost reply) is left exactly as it is.

  Idempotent triggers (SPEC §10): a run may come with an idempotency key (a string key of the
  tenant naming the route target and the client's Idempotency-Key). The key is set to the run id
  with SET NX EX 86400 in the same script as the run's creation: if it is already held, the run
  is not created and the first request's run id is returned instead.

  Every key is the tenant's (one hash slot): the set of tenants is added to before the script
  (redis/run-store.ts).

  KEYS[1]  the tenant's runs index (zset: run id by creation time, ms)
  KEYS[1 + i]  run hash of the i-th run (i = 1..n), then the idempotency keys used

  ARGV[1]  now, ms            ARGV[2]  oldest creation time kept in the index, ms
  ARGV[3]  the tenant (unused here)   ARGV[4]  n runs          ARGV[5]  s scenario snapshots
  then n groups of 6: run id, record JSON, status, index of its scenario snapshot (1..s),
  payload JSON, index in KEYS of its idempotency key (0: none); then the s scenario snapshots

  Returns  { per run: 1 when this call created it, 0 when it existed, or the run id the
             idempotency key already names (nothing created) }
]]
local n, s = tonumber(ARGV[4]), tonumber(ARGV[5])
local scenarios = 5 + 6 * n
local out = {}
for i = 0, n - 1 do
  local key, a = KEYS[2 + i], 6 + 6 * i
  local idem = tonumber(ARGV[a + 5])
  local first = false
  if idem > 0 then
    first = redis.call('GET', KEYS[idem])
    if not first then redis.call('SET', KEYS[idem], ARGV[a], 'NX', 'EX', 86400) end
  end
  if first and first ~= ARGV[a] then
    out[i + 1] = first
  elseif redis.call('HSETNX', key, 'record', ARGV[a + 1]) == 1 then
    redis.call('HSET', key, 'status', ARGV[a + 2], 'scenario', ARGV[scenarios + tonumber(ARGV[a + 3])], 'payload', ARGV[a + 4])
    redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[a])
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
return out
