--[[
  cron-due.lua: the due entries of one shard of the cron index (see engine/cron-index.ts),
  with their cursors, in one round trip.

  KEYS[1]  the shard's cron zset     (tenant \0 scenarioId → next instant ms, or a negative
                                      fresh marker)
  KEYS[2]  the shard's cursor hash   (tenant \0 scenarioId → instant ms dealt with)

  ARGV[1]  now (ms): entries with a score at or below it are due
  ARGV[2]  offset   ARGV[3]  limit (LIMIT of ZRANGEBYSCORE)

  Returns  { member, score, cursor or '' , … } lowest score first
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', tonumber(ARGV[2]), tonumber(ARGV[3]))
local out = {}
for i = 1, #due, 2 do
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], due[i]) or ''
end
return out
