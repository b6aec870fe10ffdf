-- Commit a batch of leased executions of one task partition.
--
-- KEYS[1]      the partition's ready index;  KEYS[2] its name index
-- KEYS[2 + i]  the hash of item i
-- ARGV[1]      now (the last run), epoch microseconds
-- ARGV[2 + 4(i-1) .. 5 + 4(i-1)]  item i: instance name, lease, next run ('' = delete), status
--
-- Returns one flag per item: 1 committed, 0 the lease was lost (nothing changed for that item).
local ready, names = KEYS[1], KEYS[2]
local now = ARGV[1]
local out = {}
for i = 1, #KEYS - 2 do
  local record = KEYS[2 + i]
  local base = 2 + 4 * (i - 1)
  local name, lease, next_run, status = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  if redis.call('HGET', record, 'l') == lease then
    if next_run == '' then
      redis.call('DEL', record)
      redis.call('ZREM', ready, name)
      redis.call('ZREM', names, name)
    else
      redis.call('HDEL', record, 'u', 'l', 'o')
      redis.call('HSET', record, 'n', next_run, 'r', now, 't', status)
      redis.call('ZADD', ready, next_run, name)
    end
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
