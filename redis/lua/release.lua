--[[
  release.lua: a worker gives up a run it claimed without having ended it, and without dying
  (its ownership was lost, an infrastructure error interrupted the run, or the worker was told
  to stop after a checkpoint). The run's `live` field is cleared if it still holds this owner's
  token, so the next claim does not count the interruption as a crashed execution (claim.lua).

  KEYS[1]  run hash   (live)

  ARGV[1]  owner token of the claim being given up

  Returns  1  released       0  the run is live under another owner's claim, or not at all: nothing changed
]]
if redis.call('HGET', KEYS[1], 'live') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'live')
  return 1
end
return 0
