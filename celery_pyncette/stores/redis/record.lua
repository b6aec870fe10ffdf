-- Add one history entry to an instance, touching nothing else (not its lease, next run, ready
-- index or count of settled runs): a run that did not settle.
--
-- KEYS[1]  the instance's hash (one key: safe on a cluster)
-- ARGV[1]  the history entry (JSON text);  ARGV[2] the history size (positive)
--
-- The history is kept and cut as commit.lua keeps it. Returns 1 added, 0 the instance does not
-- exist (nothing written).
local record, entry, size = KEYS[1], ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', record) == 0 then
  return 0
end
local stored = redis.call('HGET', record, 'h')
local kept = {entry}
if stored then
  for line in string.gmatch(stored, '[^\n]+') do
    if #kept >= size then break end
    kept[#kept + 1] = line
  end
end
redis.call('HSET', record, 'h', table.concat(kept, '\n'))
return 1
