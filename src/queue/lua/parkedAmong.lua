-- Which of these tickets are parked (one call whatever their number; ZMSCORE needs Redis 6.2).
-- KEYS[1] parked tickets: a sorted set, ticket id → next try (ms)
-- ARGV[1..] ticket ids
-- Returns the ids that are parked.
local parked = {}
for i = 1, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    parked[#parked + 1] = ARGV[i]
  end
end
return parked
