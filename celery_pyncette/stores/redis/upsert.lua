-- Create or replace a batch of instances of one task partition, unlocked; keep their last run and
-- status, and take them out of quarantine (a repair). Items are written in order, so a name given
-- twice ends with its last item. A lock expiry that is not an integer counts as no lock.
--
-- KEYS[1]      the partition's ready index;  KEYS[2] its name index;  KEYS[3] its quarantine
-- KEYS[3 + i]  the hash of item i
-- ARGV[1]      now, epoch microseconds;  ARGV[2] '1' to replace locked instances, else '0'
-- ARGV[3 + 4(i-1) .. 6 + 4(i-1)]  item i: instance name, next run (epoch microseconds),
--                                 spec JSON, args JSON
--
-- Returns one entry per item: 1 when written, or the lock's expiry (a string) when the instance is
-- locked at now and force was not given (that item is left unchanged).
local ready, names, quarantine = KEYS[1], KEYS[2], KEYS[3]
local now, force = tonumber(ARGV[1]), ARGV[2]
local out = {}
for i = 1, #KEYS - 3 do
  local record = KEYS[3 + i]
  local base = 3 + 4 * (i - 1)
  local name, next_run = ARGV[base], ARGV[base + 1]
  local locked_until = redis.call('HGET', record, 'u')
  local integer = locked_until and string.find(locked_until, '^%-?%d+$')
  if integer and tonumber(locked_until) > now and force ~= '1' then
    out[i] = locked_until
  else
    redis.call('HDEL', record, 'u', 'l', 'o')
    redis.call('HSET', record, 'n', next_run, 's', ARGV[base + 2], 'a', ARGV[base + 3])
    redis.call('ZADD', ready, next_run, name)
    redis.call('ZADD', names, 0, name)
    redis.call('HDEL', quarantine, name)
    out[i] = 1
  end
end
return out
