-- Parks commands whose ticket row another session holds locked (or whose ticket has commands
-- parked already), so their lane can go on: each is appended to its ticket's list, behind what
-- is there, and indexed by its command id; a newly parked ticket is scheduled for its next try.
-- KEYS[1] parked tickets: a sorted set, ticket id → next try (ms)
-- KEYS[2] parked index: a hash, command id → ticket id
-- KEYS[3..] each ticket's list of commands, in the order of the groups in ARGV
-- ARGV[1] next try (ms) for a ticket parked now
-- ARGV[2..] per ticket: its id, n, then n pairs of command id and command JSON
local nextTry = ARGV[1]
local a = 2
for k = 3, #KEYS do
  local ticket = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  if not redis.call('ZSCORE', KEYS[1], ticket) then
    redis.call('ZADD', KEYS[1], nextTry, ticket)
  end
  for i = 0, n - 1 do
    redis.call('RPUSH', KEYS[k], ARGV[a + 2 * i + 1])
    redis.call('HSET', KEYS[2], ARGV[a + 2 * i], ticket)
  end
  a = a + 2 * n
end
return 0
