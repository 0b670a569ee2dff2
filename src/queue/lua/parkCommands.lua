-- Parks commands whose ticket row another session holds locked, so their lane can go on: each is
-- appended to its ticket's list (in acceptance order) and indexed by its command id, and a newly
-- parked ticket is scheduled for its next try. In 'divert' mode only tickets already parked take
-- commands: a parked ticket's later commands queue up behind it instead of overtaking it, while
-- the commands of a ticket that is not parked are left to apply as usual. One call is atomic, so
-- a ticket is never found parked for one of its commands and not for the next.
-- KEYS[1] parked tickets: a sorted set, ticket id → next try (ms)
-- KEYS[2] parked index: a hash, command id → ticket id
-- KEYS[3..] each ticket's list of commands, in the order of the groups in ARGV
-- ARGV[1] 'park' or 'divert'
-- ARGV[2] next try (ms) for a ticket parked now
-- ARGV[3..] per ticket: its id, n, then n pairs of command id and command JSON
-- Returns the ids of the commands appended.
local mode = ARGV[1]
local nextTry = ARGV[2]
local appended = {}
local a = 3
for k = 3, #KEYS do
  local ticket = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local parked = redis.call('ZSCORE', KEYS[1], ticket)
  if mode == 'park' or parked then
    if not parked then
      redis.call('ZADD', KEYS[1], nextTry, ticket)
    end
    for i = 0, n - 1 do
      local id = ARGV[a + 2 * i]
      redis.call('RPUSH', KEYS[k], ARGV[a + 2 * i + 1])
      redis.call('HSET', KEYS[2], id, ticket)
      appended[#appended + 1] = id
    end
  end
  a = a + 2 * n
end
return appended
