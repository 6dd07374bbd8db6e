--[[
  deploy.lua: stores a scenario document as its next version, unless it equals the current
  one (same canonical hash): then nothing changes. Atomic, so two deploys racing each other
  get consecutive versions and never the same one. Every key is the tenant's (one hash slot):
  the set of tenants is added to before the script (redis/scenario-store.ts).

  Versions are kept for good (runs name the version they execute, redis/scenario-snapshots.ts),
  so their bytes are bounded per tenant: a new version that would take the bytes of the
  tenant's version entries past ARGV[5] is refused and nothing is written.

  KEYS[1]  scenarios hash of the tenant      (id → current document JSON)
  KEYS[2]  versions list of the scenario     (entry JSON, version i at index i - 1)
  KEYS[3]  bytes of the tenant's version entries (string)

  ARGV[1]  scenario id
  ARGV[2]  sha256 of the document's canonical JSON
  ARGV[3]  the document JSON
  ARGV[4]  the version entry without its number: JSON object text starting with `{"`
  ARGV[5]  the most bytes of version entries the tenant may keep

  Returns  { created, changed, version }: created 1 when no document of this id was current
           (first deploy, or after a delete); changed 0 for an unchanged document (a no-op)
           ERR.SCENARIO_STORAGE_FULL (-6)  the new version would pass ARGV[5]: nothing written
  (negative codes: lib-codes.lua)
]]
--- @include "lib-codes"

local current = redis.call('HEXISTS', KEYS[1], ARGV[1])
local count = redis.call('LLEN', KEYS[2])
if current == 1 and count > 0 then
  local last = cjson.decode(redis.call('LINDEX', KEYS[2], -1))
  if last.hash == ARGV[2] then
    return { 0, 0, count }
  end
end
local version = count + 1
local entry = '{"version":' .. version .. ',' .. string.sub(ARGV[4], 2)
local kept = tonumber(redis.call('GET', KEYS[3])) or 0
if kept + #entry > tonumber(ARGV[5]) then
  return ERR.SCENARIO_STORAGE_FULL
end
redis.call('INCRBY', KEYS[3], #entry)
redis.call('RPUSH', KEYS[2], entry)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return { 1 - current, 1, version }
