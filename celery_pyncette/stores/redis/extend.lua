-- Move the expiry of a batch of leases of one task partition (heartbeats, or beat covering the
-- queue wait of a published batch), optionally replacing each token (a worker's start).
--
-- KEYS[1]      the partition's ready index
-- KEYS[1 + i]  the hash of item i: the partition's instance prefix, then the instance name
-- ARGV[1]      the new expiry, epoch microseconds
-- ARGV[2]      the length in bytes of the instance prefix (the name follows it in each key)
-- ARGV[3]      '1' when each item gives a new token, '' when the tokens are kept
-- ARGV[4 ..]   per item: its lease, then (with ARGV[3] = '1') its new lease
--
-- Returns one character per item, in a string: '1' extended, '0' the lease was lost or the
-- instance is gone (a short reply: parsing a 100-element array costs the client more).
local ready = KEYS[1]
local expiry, skip, swap = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local step = swap and 2 or 1
local out = {}
for i = 1, #KEYS - 1 do
  local record = KEYS[1 + i]
  local base = 4 + step * (i - 1)
  if redis.call('HGET', record, 'l') == ARGV[base] then
    if swap then
      redis.call('HSET', record, 'u', expiry, 'l', ARGV[base + 1])
    else
      redis.call('HSET', record, 'u', expiry)
    end
    local next_run = redis.call('HGET', record, 'n')
    local score = expiry
    if tonumber(next_run) > tonumber(expiry) then
      score = next_run
    end
    redis.call('ZADD', ready, score, string.sub(record, skip + 1))
    out[i] = '1'
  else
    out[i] = '0'
  end
end
return table.concat(out)
