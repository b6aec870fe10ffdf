-- Move the expiry of a batch of leases of one task partition (heartbeats, or beat covering the
-- queue wait of a published batch), optionally replacing each token (a worker's start).
--
-- KEYS[1]      the partition's ready index
-- KEYS[1 + i]  the hash of item i
-- ARGV[1]      the new expiry, epoch microseconds
-- ARGV[2 + 3(i-1) .. 4 + 3(i-1)]  item i: instance name, lease, new lease ('' = keep the lease)
--
-- Returns one flag per item: 1 extended, 0 the lease was lost or the instance is gone.
local ready = KEYS[1]
local expiry = ARGV[1]
local out = {}
for i = 1, #KEYS - 1 do
  local record = KEYS[1 + i]
  local base = 2 + 3 * (i - 1)
  local name, lease, new_lease = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  if redis.call('HGET', record, 'l') == lease then
    if new_lease ~= '' then
      redis.call('HSET', record, 'u', expiry, 'l', new_lease)
    else
      redis.call('HSET', record, 'u', expiry)
    end
    local next_run = redis.call('HGET', record, 'n')
    local score = expiry
    if tonumber(next_run) > tonumber(expiry) then
      score = next_run
    end
    redis.call('ZADD', ready, score, name)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
