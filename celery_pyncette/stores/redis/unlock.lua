-- Release a batch of leases of one task partition, keeping each next run (claimable at once).
--
-- KEYS[1]      the partition's ready index
-- KEYS[1 + i]  the hash of item i
-- ARGV[1 + 4(i-1) .. 4 + 4(i-1)]  item i: instance name, lease, history entry (JSON text, '' =
--              none), history size
--
-- A history entry is added as commit.lua adds it (the run is not counted: it is not settled).
-- Returns one flag per item: 1 unlocked, 0 the lease was lost. A next run that is not an integer
-- (written by hand while the lease ran) is indexed at 0: due at once, so the next claim
-- quarantines it instead of this script failing the whole batch.
local ready = KEYS[1]
local out = {}
for i = 1, #KEYS - 1 do
  local record = KEYS[1 + i]
  local base = 1 + 4 * (i - 1)
  local name, lease, entry = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  local size = tonumber(ARGV[base + 3])
  if redis.call('HGET', record, 'l') == lease then
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
