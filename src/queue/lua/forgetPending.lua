-- Takes finished commands off their pending sets (src/queue/pending.ts), all in one call.
-- KEYS[i] the pending set of one (API key, ticket)
-- ARGV[1..] for each key in order: how many commands, then their command ids
-- Ids go to ZREM 1,000 at a time (Lua's unpack has a limit of its own).
local at = 1
for i = 1, #KEYS do
  local n = tonumber(ARGV[at])
  for first = 1, n, 1000 do
    local last = math.min(n, first + 999)
    redis.call('ZREM', KEYS[i], unpack(ARGV, at + first, at + last))
  end
  at = at + 1 + n
end
return #KEYS
