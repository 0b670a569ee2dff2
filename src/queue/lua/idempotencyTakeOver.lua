-- Hands an idempotency claim whose command was lost (never queued, or dropped with a Redis
-- restart) to a new command, only if the lost command still holds it.
-- KEYS[1] the claim
-- ARGV[1] the lost command's id
-- ARGV[2] the new claim's value: "<command id> <fingerprint> <claimed at ms>"
-- ARGV[3] its time to live, in seconds
-- Returns 1 when handed over, 0 when someone else holds the claim now.
local value = redis.call('GET', KEYS[1])
if value and string.find(value, ARGV[1], 1, true) == 1 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
