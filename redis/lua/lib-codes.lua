--[[
  lib-codes.lua: the negative return codes of every script, one meaning each, whatever the
  script (included by the scripts that fail; it is not a script of its own). The same table is
  SCRIPT_CODES in redis/script-errors.ts, where scriptError() maps each code to its error;
  a test checks that the two agree and that every script's header lists only these codes.
]]
local ERR = {
  MAX_ACTIVE_SCENARIOS = -1, -- the tenant has its maxActiveScenarios enabled already
  RUN_OWNERSHIP_LOST = -2,   -- another worker has claimed the run: nothing written
  RUN_NOT_FOUND = -3,        -- the run does not exist (expired or never created)
  RUN_NOT_HALTED = -4,       -- only a halted run can be resumed
  SCENARIO_NOT_FOUND = -5,   -- the tenant has no such scenario
  SCENARIO_STORAGE_FULL = -6, -- a new version would pass the tenant's bytes of versions
}
