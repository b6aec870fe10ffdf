-- Remove an instance whatever its lock, from its hash and both indexes.
--
-- KEYS[1]  the partition's ready index;  KEYS[2] its name index;  KEYS[3] the instance's hash
-- ARGV[1]  instance name
--
-- Returns 1 when the instance existed, else 0.
local ready, names, record = KEYS[1], KEYS[2], KEYS[3]
local existed = redis.call('DEL', record)
redis.call('ZREM', ready, ARGV[1])
redis.call('ZREM', names, ARGV[1])
return existed
