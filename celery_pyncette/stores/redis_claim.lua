-- Lease up to ARGV[4] of the candidate instances that are still claimable (ready_at <= now).
--
-- KEYS[1]      the partition's ready index (sorted set: instance name -> ready_at)
-- KEYS[2]      the partition's name index (sorted set, all scores 0)
-- KEYS[2 + i]  the hash of candidate i (i = 1 .. #KEYS - 2)
-- ARGV[1]      now, epoch microseconds
-- ARGV[2]      the new lease's expiry, epoch microseconds
-- ARGV[3]      the owner recorded with the lease
-- ARGV[4]      how many to lease at most (= how many tokens follow the names)
-- ARGV[4 + i]  the instance name of candidate i
-- ARGV[4 + n + j]  the j-th fresh lease token (n = number of candidates)
--
-- Returns one JSON text (cjson): an array holding, for each leased candidate, [i, fields] with
-- fields its hash after the change as HMGET n s a u l o r t (false where a field is absent; the
-- order is RECORD_FIELDS in redis/_layout.py), or "" when none was leased. One string parses
-- much faster in the client than a nested reply of 16 bulk strings per record. A candidate
-- another caller leased since it was read is skipped. Numbers are compared in Lua but stored
-- only as the strings the caller sent (never re-formatted by Lua).
local ready, names = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local expiry = ARGV[2]
local owner = ARGV[3]
local wanted = tonumber(ARGV[4])
local candidates = #KEYS - 2
local out = {}
local taken = 0
for i = 1, candidates do
  if taken >= wanted then
    break
  end
  local record = KEYS[2 + i]
  local name = ARGV[4 + i]
  local fields = redis.call('HMGET', record, 'n', 'u')
  if not fields[1] then
    -- An index entry without its record (only after an eviction): drop it.
    redis.call('ZREM', ready, name)
    redis.call('ZREM', names, name)
  else
    local next_run = tonumber(fields[1])
    local ready_at = next_run
    if fields[2] and tonumber(fields[2]) > ready_at then
      ready_at = tonumber(fields[2])
    end
    if ready_at <= now then
      taken = taken + 1
      redis.call('HSET', record, 'u', expiry, 'l', ARGV[4 + candidates + taken], 'o', owner)
      local score = expiry
      if next_run > tonumber(expiry) then
        score = fields[1]
      end
      redis.call('ZADD', ready, score, name)
      out[#out + 1] = {i, redis.call('HMGET', record, 'n', 's', 'a', 'u', 'l', 'o', 'r', 't')}
    end
  end
end
if #out == 0 then
  return ''
end
return cjson.encode(out)
