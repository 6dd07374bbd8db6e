--[[
  setvars.lua: sets a node's variables (its setVar calls, in order) at once, within the bounds of
  core/function-limits.ts: the scenario's variables may take at most ARGV[2] bytes (each counted as
  its name and its JSON value) and number at most ARGV[3]. Variables that would pass a bound
  are not set at all. Setting a value a variable already has changes nothing, so a node executed
  again (after a crash) sets its variables again harmlessly.

  The size of each scenario's variables is kept beside them (KEYS[2]), so a call costs its own
  variables, not all of them; a missing count (variables written before it, or defaults
  written since: redis/stores.ts drops it then) is counted afresh once.

  KEYS[1]  the scenario's variables hash   (name → JSON value)
  KEYS[2]  the tenant's variable sizes hash (scenario id → bytes of its variables)

  ARGV[1]  scenario id   ARGV[2]  most bytes   ARGV[3]  most variables
  then name, JSON value pairs, each name once

  Returns  { 1, bytes, count }  set; the variables now take bytes and number count
           { 0, bytes, count }  not set: bytes or count would pass its bound
]]
local size = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if not size then
  size = 0
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all do size = size + #all[i] end
  redis.call('HSET', KEYS[2], ARGV[1], size) -- counted once, also when this call is refused
end
local count = redis.call('HLEN', KEYS[1])
local fields = {}
for i = 4, #ARGV, 2 do
  -- each name once (redis/stores.ts sends a node's last value of each); a JSON value is never
  -- empty, so a length of 0 is a variable not set yet
  local name, value = ARGV[i], ARGV[i + 1]
  local old = redis.call('HSTRLEN', KEYS[1], name)
  if old > 0 then
    size = size - old + #value
  else
    size = size + #name + #value
    count = count + 1
  end
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
if size > tonumber(ARGV[2]) or count > tonumber(ARGV[3]) then
  return { 0, size, count }
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('HSET', KEYS[2], ARGV[1], size)
return { 1, size, count }
