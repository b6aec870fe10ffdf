-- Add or remove a strike and move the strikes marker in the same step.
--
-- KEYS[1]  the set of strike ids;  KEYS[2] the marker (an integer);
-- KEYS[3]  the reasons hash (strike id -> reason; a strike without a reason has no field)
-- ARGV[1]  'add' or 'remove';  ARGV[2] the strike id;  ARGV[3] a random start for a new marker;
-- ARGV[4]  the reason of an added strike, '' for none (a reason is never empty)
--
-- The marker starts at a random value, so a marker that was lost (a restart without persistence)
-- and counted up again does not repeat a value a cache may still hold.
-- Returns 1 when the set changed, else 0 (a new reason for a stored strike is not a change of
-- the set, but it moves the marker like every call).
local strikes, marker, reasons = KEYS[1], KEYS[2], KEYS[3]
redis.call('SET', marker, ARGV[3], 'NX')
local changed
if ARGV[1] == 'add' then
  changed = redis.call('SADD', strikes, ARGV[2])
  if ARGV[4] ~= '' then
    redis.call('HSET', reasons, ARGV[2], ARGV[4])
  else
    redis.call('HDEL', reasons, ARGV[2])
  end
else
  changed = redis.call('SREM', strikes, ARGV[2])
  redis.call('HDEL', reasons, ARGV[2])
end
redis.call('INCR', marker)
return changed
