-- The jobs next in a lane after the one being applied, in lane order, for the worker to apply
-- with it (src/queue/lookahead.ts). Reads only; the jobs stay where they are.
-- The job hashes are named by the wait list's contents, so their keys cannot be passed in KEYS:
-- they are built from ARGV[1], the lane's key prefix, as BullMQ's own scripts build them.
-- KEYS[1] the lane's wait list (BullMQ pushes on the left and takes from the right)
-- ARGV[1] the lane's key prefix ("<prefix>:<lane>:")
-- ARGV[2] most jobs to read
-- Returns, next job first: job id, its data (JSON) and its attemptsStarted, three per job.
local count = tonumber(ARGV[2])
if count < 1 then return {} end
local ids = redis.call('LRANGE', KEYS[1], -count, -1)
local out = {}
for i = #ids, 1, -1 do
  local fields = redis.call('HMGET', ARGV[1] .. ids[i], 'data', 'ats')
  if not fields[1] then break end
  out[#out + 1] = ids[i]
  out[#out + 1] = fields[1]
  out[#out + 1] = fields[2] or '0'
end
return out
