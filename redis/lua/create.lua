--[[
  create.lua: persists new runs of one tenant at once (a trigger batch), each only if it does
  not exist yet: a run that exists (a cron instant fired by another scheduler, or this call
  resent after a lost reply) is left exactly as it is.

  KEYS[1]  the tenant's runs index (zset: run id by creation time, ms)
  KEYS[2]  the set of tenants
  KEYS[2 + i]  run hash of the i-th run

  ARGV[1]  now, ms            ARGV[2]  oldest creation time kept in the index, ms
  ARGV[3]  the tenant         ARGV[4]  n runs          ARGV[5]  s scenario snapshots
  then n groups of 5: run id, record JSON, status, index of its scenario snapshot (1..s),
  payload JSON; then the s scenario snapshots (JSON)

  Returns  { 1 or 0 per run: 1 when this call created it }
]]
local n, s = tonumber(ARGV[4]), tonumber(ARGV[5])
local scenarios = 5 + 5 * n
local out = {}
for i = 0, n - 1 do
  local key, a = KEYS[3 + i], 6 + 5 * i
  if redis.call('HSETNX', key, 'record', ARGV[a + 1]) == 1 then
    redis.call('HSET', key, 'status', ARGV[a + 2], 'scenario', ARGV[scenarios + tonumber(ARGV[a + 3])], 'payload', ARGV[a + 4])
    redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[a])
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return out
