--[[
  lib-request.lua: request ids, so that a call the client resends after a lost reply (its
  first execution done, the answer lost with the connection) is applied once. Each call
  carries an id unique to it; the script keeps the id in a hash field, with its reply when
  the reply is more than a constant; a call that finds its own id there was applied already
  and answers as the first did, writing nothing (included by lease.lua, settle.lua,
  checkpoint.lua and resume.lua; it is not a script of its own).

  request_seen(key, field, id)
    returns  nil when this id is not the last one recorded in the field (a new call);
             else true, or the reply recorded with it (decoded from JSON)
  request_done(key, field, id, reply, ttl)
    records id in the field, as '<id>|<reply JSON>' when reply is not nil; with ttl, the
    hash then expires after ttl seconds. Returns reply.
]]
local function request_seen(key, field, id)
  local last = redis.call('HGET', key, field)
  if not last then return nil end
  if last == id then return true end
  local head = id .. '|'
  if string.sub(last, 1, #head) == head then
    return cjson.decode(string.sub(last, #head + 1))
  end
  return nil
end

local function request_done(key, field, id, reply, ttl)
  if reply == nil then
    redis.call('HSET', key, field, id)
  else
    redis.call('HSET', key, field, id .. '|' .. cjson.encode(reply))
  end
  if ttl then redis.call('EXPIRE', key, ttl) end
  return reply
end
