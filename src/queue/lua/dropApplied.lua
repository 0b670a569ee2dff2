-- Takes out of a lane's wait list the jobs the worker has just applied ahead of their delivery
-- (src/queue/lookahead.ts), once their outcomes are committed in the ledger, so the lane does
-- not deliver each of them later only to be answered "already finished". Only waiting jobs are
-- taken: a job another process has made active meanwhile is left to it (it finds its outcome in
-- the ledger). Their hashes go as BullMQ's removeOnComplete removes a finished job's.
-- The job hashes are named by the ids given, so their keys cannot be passed in KEYS: they are
-- built from ARGV[1], the lane's key prefix, as BullMQ's own scripts build them (peekLane.lua too).
-- KEYS[1] the lane's wait list (BullMQ pushes on the left and takes from the right)
-- ARGV[1] the lane's key prefix ("<prefix>:<lane>:")
-- ARGV[2..] the applied jobs' ids, next in the lane first
-- Returns how many jobs were taken out.
local n = #ARGV - 1
if n < 1 then return 0 end
local taken = {}
-- Usually they are the whole end of the list, in order: cut them off in one go.
local tail = redis.call('LRANGE', KEYS[1], -n, -1)
local whole = #tail == n
if whole then
  for i = 1, n do
    if tail[n + 1 - i] ~= ARGV[i + 1] then
      whole = false
      break
    end
  end
end
if whole then
  redis.call('LTRIM', KEYS[1], 0, -(n + 1))
  for i = 1, n do taken[i] = ARGV[i + 1] end
else
  -- Some of the run stayed (its ticket was locked, or its command failed to apply): take the
  -- others one by one, each searched from the end of the list, where they are.
  for i = 2, #ARGV do
    if redis.call('LREM', KEYS[1], -1, ARGV[i]) > 0 then taken[#taken + 1] = ARGV[i] end
  end
end
for _, id in ipairs(taken) do
  local job = ARGV[1] .. id
  redis.call('DEL', job, job .. ':logs')
end
return #taken
