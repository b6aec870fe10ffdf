-- Create or replace a batch of instances of one task partition, unlocked; keep their last run and
-- status, and take them out of quarantine (a repair). Items are written in order, so a name given
-- twice ends with its last item. A lock expiry that is not an integer counts as no lock.
--
-- KEYS[1]      the partition's ready index;  KEYS[2] its name index;  KEYS[3] its quarantine
-- KEYS[3 + i]  the hash of item i
-- ARGV[1]      now, epoch microseconds;  ARGV[2] '1' to replace locked instances, else '0'
-- ARGV[3]      '1' to keep the stored next run of an instance whose stored spec equals the new
--              one (both canonical JSON text) and which is not quarantined, else '0'
-- ARGV[4 + 4(i-1) .. 7 + 4(i-1)]  item i: instance name, next run (epoch microseconds),
--                                 spec JSON, args JSON
--
-- Returns one entry per item: {1, next run it now has} when written, or {0, the lock's expiry}
-- when the instance is locked at now and force was not given (that item is left unchanged).
local ready, names, quarantine = KEYS[1], KEYS[2], KEYS[3]
local now, force, keep = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local out = {}
for i = 1, #KEYS - 3 do
  local record = KEYS[3 + i]
  local base = 4 + 4 * (i - 1)
  local name, next_run, spec = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  local stored = redis.call('HMGET', record, 'u', 'n', 's')
  local locked_until, stored_next, stored_spec = stored[1], stored[2], stored[3]
  local integer = locked_until and string.find(locked_until, '^%-?%d+$')
  if integer and tonumber(locked_until) > now and force ~= '1' then
    out[i] = {0, locked_until}
  else
    if keep == '1' and stored_spec == spec and stored_next
        and string.find(stored_next, '^%-?%d+$')
        and redis.call('HEXISTS', quarantine, name) == 0 then
      next_run = stored_next
    end
    redis.call('HDEL', record, 'u', 'l', 'o')
    redis.call('HSET', record, 'n', next_run, 's', spec, 'a', ARGV[base + 3])
    redis.call('ZADD', ready, next_run, name)
    redis.call('ZADD', names, 0, name)
    redis.call('HDEL', quarantine, name)
    out[i] = {1, next_run}
  end
end
return out
