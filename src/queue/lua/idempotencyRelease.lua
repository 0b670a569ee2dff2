-- Gives an idempotency claim back when its command could not be queued, only if that command
-- still holds it.
-- KEYS[1] the claim
-- ARGV[1] the command's id
-- Returns 1 when released, 0 when someone else holds the claim.
local value = redis.call('GET', KEYS[1])
if value and string.find(value, ARGV[1], 1, true) == 1 then
  return redis.call('DEL', KEYS[1])
end
return 0
