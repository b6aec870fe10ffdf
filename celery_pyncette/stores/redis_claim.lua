-- Lease up to ARGV[4] of the candidate instances that are still claimable (ready_at <= now).
--
-- KEYS[1]      the partition's ready index (sorted set: instance name -> ready_at), "<prefix>:ready"
-- KEYS[2]      the partition's name index (sorted set, all scores 0)
-- KEYS[2 + i]  the hash of candidate i (i = 1 .. #KEYS - 2), "<prefix>:i:<instance name>"
-- ARGV[1]      now, epoch microseconds
-- ARGV[2]      the new lease's expiry, epoch microseconds
-- ARGV[3]      the owner recorded with the lease
-- ARGV[4]      how many to lease at most (= how many tokens follow)
-- ARGV[4 + j]  the j-th fresh lease token
--
-- Returns one JSON text (cjson): an array holding, for each leased candidate, [i, fields] with
-- fields its hash after the change as n s a u l o r t (false where a field is absent; the order
-- is RECORD_FIELDS in redis/_layout.py), or "" when none was leased. One string parses much
-- faster in the client than a nested reply of bulk strings. The fields are read once, before the
-- lease is written; the lease's own fields are the values written. A candidate another caller
-- leased since it was read is skipped. Numbers are compared in Lua but stored only as the strings
-- the caller sent (never re-formatted by Lua). Instance names are cut from the hash keys (after
-- the prefix and ":i:"), so the caller sends each name once.
local ready, names = KEYS[1], KEYS[2]
local name_start = #ready - 2
local now = tonumber(ARGV[1])
local expiry = ARGV[2]
local owner = ARGV[3]
local wanted = tonumber(ARGV[4])
local out = {}
local taken = 0
for i = 1, #KEYS - 2 do
  if taken >= wanted then
    break
  end
  local record = KEYS[2 + i]
  local name = string.sub(record, name_start)
  local fields = redis.call('HMGET', record, 'n', 'u', 's', 'a', 'r', 't')
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
      local token = ARGV[4 + taken]
      redis.call('HSET', record, 'u', expiry, 'l', token, 'o', owner)
      local score = expiry
      if next_run > tonumber(expiry) then
        score = fields[1]
      end
      redis.call('ZADD', ready, score, name)
      out[#out + 1] = {i, {fields[1], fields[3], fields[4], expiry, token, owner, fields[5], fields[6]}}
    end
  end
end
if #out == 0 then
  return ''
end
return cjson.encode(out)
