-- Quarantine one instance: take it out of the ready index, clear its lease, record why and when.
--
-- KEYS[1]  the partition's ready index;  KEYS[2] its quarantine (hash: name -> JSON [since, reason])
-- KEYS[3]  the instance's hash
-- ARGV[1]  instance name;  ARGV[2] the lease it must hold ('' = whatever its lock)
-- ARGV[3]  the reason;  ARGV[4] now, epoch microseconds
--
-- Returns 1 when quarantined, 0 when the instance is gone or the lease was lost (nothing changed).
-- The instance stays stored and listed by name; an upsert repairs it, a delete removes it.
local ready, quarantine, record = KEYS[1], KEYS[2], KEYS[3]
local name, lease = ARGV[1], ARGV[2]
if redis.call('EXISTS', record) == 0 then
  return 0
end
if lease ~= '' and redis.call('HGET', record, 'l') ~= lease then
  return 0
end
redis.call('ZREM', ready, name)
redis.call('HDEL', record, 'u', 'l', 'o')
redis.call('HSET', quarantine, name, cjson.encode({ARGV[4], ARGV[3]}))
return 1
