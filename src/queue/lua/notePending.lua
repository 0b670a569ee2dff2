-- Notes accepted commands as pending for read.php's include_pending (src/queue/pending.ts): one
-- call for a whole request's commands, rather than a ZADD and a PEXPIRE per ticket sent one by one.
-- KEYS[i] the pending set of one (API key, ticket)
-- ARGV[1] how long a set outlives its latest note (ms)
-- ARGV[2..] for each key in order: how many commands, then that many pairs (accepted at ms, command id)
-- Members go to ZADD 500 pairs at a time (Lua's unpack has a limit of its own).
local ttl = ARGV[1]
local at = 2
for i = 1, #KEYS do
  local n = tonumber(ARGV[at])
  for first = 1, n, 500 do
    local last = math.min(n, first + 499)
    redis.call('ZADD', KEYS[i], unpack(ARGV, at + 2 * first - 1, at + 2 * last))
  end
  redis.call('PEXPIRE', KEYS[i], ttl)
  at = at + 1 + 2 * n
end
return #KEYS
