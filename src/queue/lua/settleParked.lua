-- After a worker tried a parked ticket's commands: the ones that finished (the head of its list,
-- in order) leave the list and the index; an empty list unparks the ticket, which lets its lane's
-- later commands apply directly again; otherwise the ticket is scheduled for its next try.
-- KEYS[1] parked tickets: a sorted set, ticket id → next try (ms)
-- KEYS[2] parked index: a hash, command id → ticket id
-- KEYS[3] the ticket's list of commands
-- ARGV[1] the ticket id
-- ARGV[2] its next try (ms), if commands remain
-- ARGV[3..] ids of the commands that finished
-- Returns how many commands remain parked.
local finished = #ARGV - 2
if finished > 0 then
  redis.call('LTRIM', KEYS[3], finished, -1)
  for i = 3, #ARGV do
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
local left = redis.call('LLEN', KEYS[3])
if left == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
end
return left
