-- Release a batch of leases of one task partition, keeping each next run (claimable at once).
--
-- KEYS[1]      the partition's ready index
-- KEYS[1 + i]  the hash of item i
-- ARGV[1 + 2(i-1) .. 2 + 2(i-1)]  item i: instance name, lease
--
-- Returns one flag per item: 1 unlocked, 0 the lease was lost. A next run that is not an integer
-- (written by hand while the lease ran) is indexed at 0: due at once, so the next claim
-- quarantines it instead of this script failing the whole batch.
local ready = KEYS[1]
local out = {}
for i = 1, #KEYS - 1 do
  local record = KEYS[1 + i]
  local name, lease = ARGV[2 * i - 1], ARGV[2 * i]
  if redis.call('HGET', record, 'l') == lease then
    redis.call('HDEL', record, 'u', 'l', 'o')
    local next_run = redis.call('HGET', record, 'n')
    if not (next_run and string.find(next_run, '^%-?%d+$')) then
      next_run = '0'
    end
    redis.call('ZADD', ready, next_run, name)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
