--[[
  checkpoint.lua: durably record a run's progress: the tasks completed since the last
  checkpoint (appended in order), the run record and the state to resume from, at once.
  Fenced by the owner token, so a worker that lost the run cannot write to it.

  KEYS[1]  run hash               (record, status, state, scenario, payload, owner)
  KEYS[2]  run tasks list

  ARGV[1]  owner token ('' = no fencing: the caller is not a worker)
  ARGV[2]  run record JSON (without tasks)
  ARGV[3]  state JSON, or '' when the run has no pending work
  ARGV[4]  '1' when the run has ended: the keys then expire after ARGV[5] seconds
  ARGV[5]  retention in seconds
  ARGV[6]  run status (kept in its own field for resume.lua)
  ARGV[7..] stored tasks, JSON each

  Returns   1  written
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
if #ARGV > 6 then
  local n = #ARGV
  local i = 7
  while i <= n do
    local j = math.min(i + 999, n)
    redis.call('RPUSH', KEYS[2], unpack(ARGV, i, j))
    i = j + 1
  end
end
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'status', ARGV[6])
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
return 1
