-- Deletes a key only if its value still begins with the holder's id: an idempotency claim given
-- back by the command that holds it, or a worker's lease on a parked ticket released by its owner.
-- KEYS[1] the key
-- ARGV[1] the holder's id (a command id, or a lease token)
-- Returns 1 when deleted, 0 when someone else holds the key (or nobody does).
local value = redis.call('GET', KEYS[1])
if value and string.find(value, ARGV[1], 1, true) == 1 then
  return redis.call('DEL', KEYS[1])
end
return 0
