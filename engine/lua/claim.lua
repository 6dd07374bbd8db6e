--[[
  claim.lua: a worker takes over a run. The new owner token fences every later write of the
  previous owner (checkpoint.lua, lease.lua), and the actions the run held are given back to
  the pool (the new owner leases afresh; the old lease would otherwise be lost).

  KEYS[1]  run hash
  KEYS[2]  leases hash of the current period    KEYS[3]  current period hash
  KEYS[4]  leases hash of the previous period   KEYS[5]  previous period hash

  ARGV[1]  new owner token
  ARGV[2]  run id

  Returns  1 claimed;  -3 the run does not exist
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -3
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
for _, pair in ipairs({ { KEYS[2], KEYS[3] }, { KEYS[4], KEYS[5] } }) do
  local held = tonumber(redis.call('HGET', pair[1], ARGV[2])) or 0
  if held > 0 then
    redis.call('HINCRBY', pair[2], 'leased', -held)
  end
  redis.call('HDEL', pair[1], ARGV[2])
end
return 1
