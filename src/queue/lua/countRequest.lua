-- One request counted against a fixed-window rate limit (src/http/rateLimitStore.ts), as
-- @fastify/rate-limit's own Redis store counts it: the first request of a window starts it.
-- KEYS[1] the counter
-- ARGV[1] the window's length (ms)
-- Returns the count so far in this window and the window's remaining time (ms).
local current = redis.call('INCR', KEYS[1])
local ttl
if current == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
else
  ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    -- A counter left without an expiry (never expected): give it one rather than count forever.
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
  end
end
return {current, ttl}
