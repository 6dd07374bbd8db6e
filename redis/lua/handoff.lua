--[[
  handoff.lua: a worker hands some runs of a job it took on to a new job (it had fewer free
  places than the job had runs): they are recorded under the new job's id, so sweep.lua looks
  for them there. Runs released meanwhile are left alone.

  KEYS[1]  where hash (lib-fair.lua)     KEYS[2]  state hash (its `seq`)
  KEYS[3]  inflight zset (the runs are checked by sweep.lua from now on, not earlier)

  ARGV[1]  the job id prefix of this shard;  ARGV[2..]  the run ids handed on

  Returns  the new job's id; never fails
]]
local b = ARGV[1] .. redis.call('HINCRBY', KEYS[2], 'seq', 1)
for i = 2, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local w = cjson.decode(raw)
    if w.b ~= 'r' then
      w.b = b
      redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(w))
      redis.call('ZADD', KEYS[3], tonumber(redis.call('TIME')[1]) * 1000, ARGV[i])
    end
  end
end
return b
