--[[
  deploy.lua: stores a scenario document as its next version, unless it equals the current
  one (same canonical hash): then nothing changes. Atomic, so two deploys racing each other
  get consecutive versions and never the same one. Every key is the tenant's (one hash slot):
  the set of tenants is added to before the script (redis/scenario-store.ts).

  KEYS[1]  scenarios hash of the tenant      (id → current document JSON)
  KEYS[2]  versions list of the scenario     (entry JSON, version i at index i - 1)

  ARGV[1]  scenario id
  ARGV[2]  sha256 of the document's canonical JSON
  ARGV[3]  the document JSON
  ARGV[4]  the version entry without its number: JSON object text starting with `{"`

  Returns  { created, changed, version }: created 1 when no document of this id was current
           (first deploy, or after a delete); changed 0 for an unchanged document (a no-op)
]]
local current = redis.call('HEXISTS', KEYS[1], ARGV[1])
local count = redis.call('LLEN', KEYS[2])
if current == 1 and count > 0 then
  local last = cjson.decode(redis.call('LINDEX', KEYS[2], -1))
  if last.hash == ARGV[2] then
    return { 0, 0, count }
  end
end
local version = count + 1
redis.call('RPUSH', KEYS[2], '{"version":' .. version .. ',' .. string.sub(ARGV[4], 2))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return { 1 - current, 1, version }
