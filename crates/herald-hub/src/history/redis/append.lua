-- Appends a batch of updates to the shared log and applies retention, as
-- one atomic step on the Redis server (so every node sees one order).
--
-- KEYS: 1 the stream, 2 the sequence counter, 3 the id index (hash: event
--       id -> sequence number of its earliest held entry), 4 the byte count.
-- ARGV: 1 most events kept, 2 most bytes kept, 3 oldest age kept in ms
--       (0: no age limit), then five per update: id, private ("1"/"0"),
--       topics (JSON array), SSE frame, size in bytes.
-- Returns: { now (ms, Redis's clock), events held, bytes held,
--            last sequence number, the batch's sequence numbers... }
--
-- Each entry's stream id is "<seq>-0", seq from the counter: dense and
-- increasing across every node, so positions compare across nodes.

local stream, counter, ids, bytes_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local max_events = tonumber(ARGV[1])
local max_bytes = tonumber(ARGV[2])
local max_age = tonumber(ARGV[3])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- The stream's last id, when the counter is behind it (the counter key was
-- deleted or evicted): the next sequence number must still be above it.
local function last_generated()
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      return tonumber(string.match(info[i + 1], '^(%d+)-'))
    end
  end
  return 0
end

local seqs = {}
local added = 0
for b = 4, #ARGV, 5 do
  local id, private, topics, frame, size = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local seq = redis.call('INCR', counter)
  local ok = redis.pcall('XADD', stream, seq .. '-0',
    't', now, 'i', id, 'p', private, 'o', topics, 'f', frame, 's', size)
  if type(ok) == 'table' and ok.err then
    seq = last_generated() + 1
    redis.call('SET', counter, seq)
    redis.call('XADD', stream, seq .. '-0',
      't', now, 'i', id, 'p', private, 'o', topics, 'f', frame, 's', size)
  end
  redis.call('HSETNX', ids, id, seq)
  added = added + tonumber(size)
  seqs[#seqs + 1] = seq
end

-- Retention: drop from the front while over a limit. At least one entry
-- stays under the byte limit, as in the other backends. Entries are read
-- only when one may have to go: as many as the count limit asks for, else
-- the oldest one, to see its size or age.
local len = redis.call('XLEN', stream)
local held_before = tonumber(redis.call('GET', bytes_key) or '0')
local held = held_before + added
local cutoff = -1
if max_age > 0 then cutoff = now - max_age end
local function over()
  return len > max_events or (held > max_bytes and len > 1)
end
local last_removed = nil
while len > 0 and (over() or cutoff >= 0) do
  local count = 1
  if len > max_events then count = math.min(len - max_events, 256) end
  local oldest = redis.call('XRANGE', stream, last_removed and ('(' .. last_removed) or '-', '+', 'COUNT', count)
  if #oldest == 0 then break end
  local stop = false
  for _, e in ipairs(oldest) do
    -- Fields as written above: t, now, i, id, p, private, o, topics, f, frame, s, size.
    local f = e[2]
    if not over() and not (cutoff >= 0 and tonumber(f[2]) < cutoff) then
      stop = true
      break
    end
    local seq = string.match(e[1], '^(%d+)-')
    if redis.call('HGET', ids, f[4]) == seq then
      redis.call('HDEL', ids, f[4])
    end
    len = len - 1
    held = held - tonumber(f[12])
    last_removed = e[1]
  end
  if stop then break end
end
if last_removed then
  redis.call('XTRIM', stream, 'MINID', (tonumber(string.match(last_removed, '^(%d+)-')) + 1) .. '-0')
end
if held < 0 or len == 0 then held = 0 end
-- Written only when it changed: the upkeep's call with no entries is then
-- a read, with nothing for the append-only file to fsync.
if held ~= held_before then redis.call('SET', bytes_key, held) end

local result = { now, len, held, tonumber(redis.call('GET', counter) or '0') }
for _, seq in ipairs(seqs) do result[#result + 1] = seq end
return result
