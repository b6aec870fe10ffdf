-- Add or remove a strike and move the strikes marker in the same step.
--
-- KEYS[1]  the set of strike ids;  KEYS[2] the marker (an integer)
-- ARGV[1]  'add' or 'remove';  ARGV[2] the strike id;  ARGV[3] a random start for a new marker
--
-- The marker starts at a random value, so a marker that was lost (a restart without persistence)
-- and counted up again does not repeat a value a cache may still hold.
-- Returns 1 when the set changed, else 0.
local strikes, marker = KEYS[1], KEYS[2]
redis.call('SET', marker, ARGV[3], 'NX')
local changed
if ARGV[1] == 'add' then
  changed = redis.call('SADD', strikes, ARGV[2])
else
  changed = redis.call('SREM', strikes, ARGV[2])
end
redis.call('INCR', marker)
return changed
