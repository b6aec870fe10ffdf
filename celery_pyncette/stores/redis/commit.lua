-- Commit a batch of leased executions of one task partition, with their run history.
--
-- KEYS[1]      the partition's ready index;  KEYS[2] its name index
-- KEYS[2 + i]  the hash of item i
-- ARGV[1]      now (the last run), epoch microseconds;  ARGV[2] the next run of a finished
--              static task, epoch microseconds
-- ARGV[3 + 7(i-1) .. 9 + 7(i-1)]  item i: instance name, lease, next run ('' = delete), status,
--              history entry (JSON text, '' = none), history size, max runs ('' = none)
--
-- The hash keeps the count of settled runs in 'c' and the history in 'h': entries newest first,
-- one per line (a JSON text holds no raw newline). Returns one flag per item: 1 committed, 0 the lease was lost (nothing changed for it).
local ready, names = KEYS[1], KEYS[2]
local now, finished = ARGV[1], ARGV[2]
local out = {}
for i = 1, #KEYS - 2 do
  local record = KEYS[2 + i]
  local base = 3 + 7 * (i - 1)
  local name, lease, next_run, status = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local entry, size, max_runs = ARGV[base + 4], tonumber(ARGV[base + 5]), ARGV[base + 6]
  if redis.call('HGET', record, 'l') == lease then
    local count = redis.call('HINCRBY', record, 'c', 1)
    if max_runs ~= '' and next_run ~= '' and count >= tonumber(max_runs) then
      if name == '__static__' then next_run = finished else next_run = '' end
    end
    if next_run == '' then
      redis.call('DEL', record)
      redis.call('ZREM', ready, name)
      redis.call('ZREM', names, name)
    else
      if entry ~= '' and size > 0 then
        local stored = redis.call('HGET', record, 'h')
        local kept = {entry}
        if stored then
          for line in string.gmatch(stored, '[^\n]+') do
            if #kept >= size then break end
            kept[#kept + 1] = line
          end
        end
        redis.call('HSET', record, 'h', table.concat(kept, '\n'))
      end
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
