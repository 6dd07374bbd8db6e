--[[
  secret-set.lua: stores a tenant's credential, unless it is a new name and the tenant already
  keeps ARGV[3] credentials (services/secrets.ts MAX_SECRETS): values are up to 64 KB each, so
  without a bound on their number one API key could fill the Redis every tenant shares.
  Replacing a credential that exists is always allowed.

  KEYS[1]  the tenant's credentials hash   (name → sealed value and updatedAt, JSON)

  ARGV[1]  name   ARGV[2]  stored JSON   ARGV[3]  most credentials a tenant may keep

  Returns  1  stored
           0  not stored: a new name, and the tenant keeps ARGV[3] credentials already
]]
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
