--[[
  cron-advance.lua: moves one cron index entry on, only if it still has the score it was read
  with (a compare-and-set: a redeploy, re-enable or another scheduler's move in between wins).

  KEYS[1]  the shard's cron zset     KEYS[2]  the shard's cursor hash

  ARGV[1]  member (tenant \0 scenarioId)
  ARGV[2]  the score as read
  ARGV[3]  the new score, or '' to remove the entry and its cursor
  ARGV[4]  the new cursor (ms): the cursor only ever rises

  Returns  1 moved (or removed), 0 the entry changed since it was read: nothing done
]]
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local cursor = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if not cursor or tonumber(ARGV[4]) > cursor then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
end
return 1
