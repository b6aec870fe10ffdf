-- Create or replace an instance, unlocked; keep its last run and status.
--
-- KEYS[1]  the partition's ready index;  KEYS[2] its name index;  KEYS[3] the instance's hash
-- ARGV[1]  now, epoch microseconds;  ARGV[2] '1' to replace a locked instance, else '0'
-- ARGV[3]  instance name;  ARGV[4] next run, epoch microseconds;  ARGV[5] spec JSON;  ARGV[6] args JSON
--
-- Returns {1} when written, {0, locked_until} when the instance is locked and force was not given.
local ready, names, record = KEYS[1], KEYS[2], KEYS[3]
local now, force, name, next_run = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local locked_until = redis.call('HGET', record, 'u')
if locked_until and tonumber(locked_until) > tonumber(now) and force ~= '1' then
  return {0, locked_until}
end
redis.call('HDEL', record, 'u', 'l', 'o')
redis.call('HSET', record, 'n', next_run, 's', ARGV[5], 'a', ARGV[6])
redis.call('ZADD', ready, next_run, name)
redis.call('ZADD', names, 0, name)
return {1}
