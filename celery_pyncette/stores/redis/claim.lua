-- Lease up to ARGV[4] of the candidate instances that are still claimable (ready_at <= now);
-- quarantine the candidates whose next run or lock expiry is not an integer.
--
-- KEYS[1]      the partition's ready index (sorted set: instance name -> ready_at), "<prefix>:ready"
-- KEYS[2]      the partition's name index (sorted set, all scores 0)
-- KEYS[3]      the partition's quarantine (hash: instance name -> JSON [since, reason])
-- KEYS[3 + i]  the hash of candidate i (i = 1 .. #KEYS - 3), "<prefix>:i:<instance name>"
-- ARGV[1]      now, epoch microseconds
-- ARGV[2]      the new lease's expiry, epoch microseconds
-- ARGV[3]      the owner recorded with the lease
-- ARGV[4]      how many to take at most (= how many tokens follow); a quarantine counts as a take
-- ARGV[4 + j]  the j-th fresh lease token
--
-- Returns one JSON text (cjson): an array holding, for each candidate taken, [i, fields] with
-- fields its hash after the change as n s a u l o r t (false where a field is absent; the order
-- claimed_records in _layout.py unpacks) when it was leased, or [i, reason] (a string) when it was
-- quarantined; "" when none was taken. One string parses much faster in the client than a nested
-- reply of bulk strings. The fields are read once, before the lease is written; the lease's own
-- fields are the values written. A candidate another caller leased since it was read is skipped.
-- Numbers are compared in Lua but stored only as the strings the caller sent (never re-formatted
-- by Lua). Instance names are cut from the hash keys (after the prefix and ":i:"), so the caller
-- sends each name once.
--
-- A quarantined instance leaves the ready index, loses its lease and is recorded in KEYS[3]; it
-- stays stored (an upsert repairs it, a delete removes it). Without this, one field that is not a
-- number would make every claim of the partition fail ("attempt to compare nil with number").
local ready, names, quarantine = KEYS[1], KEYS[2], KEYS[3]
local name_start = #ready - 2
local now = tonumber(ARGV[1])
local expiry = ARGV[2]
local owner = ARGV[3]
local wanted = tonumber(ARGV[4])
local out = {}
local taken = 0
local leased = 0

-- An integer field as a number; nil when absent or anything but an optional '-' and digits.
local function integer(value)
  if value and string.find(value, '^%-?%d+$') then
    return tonumber(value)
  end
  return nil
end

for i = 1, #KEYS - 3 do
  if taken >= wanted then
    break
  end
  local record = KEYS[3 + i]
  local name = string.sub(record, name_start)
  local fields = redis.call('HMGET', record, 'n', 'u', 's', 'a', 'r', 't')
  if not fields[1] and redis.call('EXISTS', record) == 0 then
    -- An index entry without its record (only after an eviction): drop it.
    redis.call('ZREM', ready, name)
    redis.call('ZREM', names, name)
  else
    local next_run = integer(fields[1])
    local locked_until = integer(fields[2])
    local problem = nil
    if not fields[1] then
      problem = 'next_run (n) is missing'
    elseif not next_run then
      problem = 'next_run (n) is not an integer: ' .. string.sub(fields[1], 1, 40)
    elseif fields[2] and not locked_until then
      problem = 'locked_until (u) is not an integer: ' .. string.sub(fields[2], 1, 40)
    end
    if problem then
      taken = taken + 1
      redis.call('ZREM', ready, name)
      if locked_until then
        redis.call('HDEL', record, 'u', 'l', 'o')
      else
        redis.call('HDEL', record, 'l', 'o') -- a garbage u stays for get to report
      end
      redis.call('HSET', quarantine, name, cjson.encode({ARGV[1], problem}))
      out[#out + 1] = {i, problem}
    else
      local ready_at = next_run
      if locked_until and locked_until > ready_at then
        ready_at = locked_until
      end
      if ready_at <= now then
        taken = taken + 1
        leased = leased + 1
        local token = ARGV[4 + leased]
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
end
if #out == 0 then
  return ''
end
return cjson.encode(out)
