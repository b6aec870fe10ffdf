-- Move a lease's expiry (a heartbeat).
--
-- KEYS[1]  the partition's ready index;  KEYS[2] the instance's hash
-- ARGV[1]  instance name;  ARGV[2] lease;  ARGV[3] the new expiry, epoch microseconds
--
-- Returns 1 when extended, 0 when the lease was lost or the instance is gone.
local ready, record = KEYS[1], KEYS[2]
local name, lease, expiry = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', record, 'l') ~= lease then
  return 0
end
redis.call('HSET', record, 'u', expiry)
local next_run = redis.call('HGET', record, 'n')
local score = expiry
if tonumber(next_run) > tonumber(expiry) then
  score = next_run
end
redis.call('ZADD', ready, score, name)
return 1
