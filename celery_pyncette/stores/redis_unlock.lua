-- Release a batch of leases of one task partition, keeping each next run (claimable at once).
--
-- KEYS[1]      the partition's ready index
-- KEYS[1 + i]  the hash of item i
-- ARGV[1 + 2(i-1) .. 2 + 2(i-1)]  item i: instance name, lease
--
-- Returns one flag per item: 1 unlocked, 0 the lease was lost.
local ready = KEYS[1]
local out = {}
for i = 1, #KEYS - 1 do
  local record = KEYS[1 + i]
  local name, lease = ARGV[2 * i - 1], ARGV[2 * i]
  if redis.call('HGET', record, 'l') == lease then
    redis.call('HDEL', record, 'u', 'l', 'o')
    redis.call('ZADD', ready, redis.call('HGET', record, 'n'), name)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
