-- Remove an instance whatever its lock or quarantine, from its hash, both indexes and the quarantine.
--
-- KEYS[1]  the partition's ready index;  KEYS[2] its name index;  KEYS[3] the instance's hash
-- KEYS[4]  the partition's quarantine
-- ARGV[1]  instance name
--
-- Returns 1 when the instance existed, else 0.
local ready, names, record, quarantine = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local existed = redis.call('DEL', record)
redis.call('ZREM', ready, ARGV[1])
redis.call('ZREM', names, ARGV[1])
redis.call('HDEL', quarantine, ARGV[1])
return existed
