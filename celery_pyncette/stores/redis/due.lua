-- Which task partitions hold an instance that is claimable now. Read-only.
--
-- KEYS[i]  the ready index of partition i (sorted set: instance name -> ready_at)
-- ARGV[1]  now, epoch microseconds
--
-- Returns one flag per partition: 1 when its earliest ready_at is <= now, else 0.
local now = ARGV[1]
local out = {}
for i = 1, #KEYS do
  local ready = KEYS[i]
  if #redis.call('ZRANGEBYSCORE', ready, '-inf', now, 'LIMIT', 0, 1) > 0 then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
