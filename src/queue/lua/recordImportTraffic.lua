-- Adds one bulk.php request of an import to that import's record (src/queue/imports.ts), and
-- keeps the index of imports by latest request, both for `keep` ms after the latest request.
-- KEYS[1] the import's hash
-- KEYS[2] the index of imports (a sorted set: member → latest request, ms)
-- ARGV[1] now (ms)
-- ARGV[2] keep (ms)
-- ARGV[3] the import's member in the index
-- ARGV[4] commands queued by the request, ARGV[5] items it answered as already had, ARGV[6] items it refused
-- ARGV[7] the highest file line the request carried (0: none known)
-- ARGV[8] the API key's name
-- ARGV[9] the file's name ('' when not sent)
-- ARGV[10] the file's line count ('' when not sent)
-- Returns 1.
local now = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HINCRBY', KEYS[1], 'queued', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'duplicates', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'refused', ARGV[6])
redis.call('HSETNX', KEYS[1], 'first_at', now)
redis.call('HSET', KEYS[1], 'last_at', now, 'key_name', ARGV[8])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'file', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'lines', ARGV[10]) end
local line = tonumber(ARGV[7])
if line > tonumber(redis.call('HGET', KEYS[1], 'highest_line') or '0') then
  redis.call('HSET', KEYS[1], 'highest_line', line)
end
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - keep)
return 1
