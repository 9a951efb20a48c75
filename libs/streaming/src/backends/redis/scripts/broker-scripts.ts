/**
 * The Lua scripts of the Broker (redis-broker.ts): the routed publish of a
 * cluster and a room's message log (stream `hist` + hash `msgs`, and the
 * `outbox` of durable appends; see redis-keys.ts). Each touches the keys of
 * one room only (see lua-script.ts); the channel a script publishes on is the
 * room's topic, which in sharded mode is in the room's slot too
 * (`<prefix>{r:<roomId>}:topic`): Redis Cluster refuses a script whose
 * SPUBLISH leaves the slot of its keys.
 */
import { script } from './lua-script';

/**
 * KEYS: a routing key of the topic (not touched). ARGV: channel, payload.
 * Cluster only: a keyless PUBLISH goes to a random node, so two publishes on
 * one topic could overtake each other on their way through the cluster bus.
 */
export const PUBLISH_ROUTED = script(
  'publishRouted',
  `
return redis.call('PUBLISH', ARGV[1], ARGV[2])
`,
);

/**
 * Lua: the seq just below the outbox's first entry (KEYS[i]: the outbox), or
 * nil when the outbox is empty. Entries are `<seq>\x1f<envelope>`.
 */
const VISIBLE = `
local function outboxHead(key)
  local first = redis.call('LINDEX', key, 0)
  if not first then return nil end
  return tonumber(string.sub(first, 1, string.find(first, US, 1, true) - 1)) - 1
end
`;

/**
 * Lua: publish the outbox's entries up to seq `upTo` (all when nil), in order,
 * with `cmd` (PUBLISH / SPUBLISH) on `channel`. Returns how many.
 */
const FLUSH = `
local function flush(key, upTo, cmd, channel)
  local n = 0
  while true do
    local e = redis.call('LINDEX', key, 0)
    if not e then break end
    local i = string.find(e, US, 1, true)
    if upTo and tonumber(string.sub(e, 1, i - 1)) > upTo then break end
    redis.call('LPOP', key)
    if channel ~= '' then redis.call(cmd, channel, string.sub(e, i + 1)) end
    n = n + 1
  end
  return n
end
`;

/**
 * Lua: the replicas a write of this master should wait for. In a cluster,
 * the replicas the cluster lists for this master, unless marked failed by
 * the cluster (FAIL: a majority of masters agree); one whose replication link
 * is down for the moment still counts, so a write is not acknowledged on the
 * master alone while that replica could still be promoted. (Left open: a
 * replica marked failed that comes back and is promoted before it caught up,
 * a second failure.) Otherwise, the replicas online (INFO replication).
 */
const REPLICAS = `
local function replicas()
  local n = 0
  if string.find(redis.call('INFO', 'cluster'), 'cluster_enabled:1', 1, true) then
    -- One CLUSTER NODES line per replica: <id> <addr> <flags> ...
    for _, line in ipairs(redis.call('CLUSTER', 'REPLICAS', redis.call('CLUSTER', 'MYID'))) do
      local flags = string.match(line, '^%S+ %S+ (%S+)')
      if flags and not string.find(',' .. flags .. ',', ',fail,', 1, true) then n = n + 1 end
    end
  else
    for _ in string.gmatch(redis.call('INFO', 'replication'), 'slave%d+:[^\\r\\n]*state=online') do
      n = n + 1
    end
  end
  return n
end
`;

/**
 * KEYS: room, seq, hist, msgs, outbox.
 * ARGV: messageId, timestamp ms, record tail, maxHistory, channel ('' = no publish),
 * envelope prefix, envelope suffix, publish command (PUBLISH | SPUBLISH),
 * replicas to wait for (0 = do not wait).
 *
 * One atomic step: next seq, stream entry `<seq>-0`, record, trim to
 * maxHistory, and the publication of `prefix .. seq .. suffix`. Because it
 * happens inside the script, every subscriber on every node sees a room's
 * messages in seq order, whatever the number of concurrent senders.
 *
 * Durable appends (replicas > 0): `need` is the replicas to wait for, at most
 * the master's replicas (see REPLICAS). When it is 0 the message is
 * published here as above. Otherwise the envelope goes to the room's outbox
 * (unpublished, and hidden from history reads) until the caller has seen
 * `need` replicas take it (WAIT) and runs FLUSH_OUTBOX: a message that a
 * failover could still lose is never delivered. Whatever is published here
 * comes after the outbox is flushed, so the order stays the seq order.
 *
 * Returns {seq, need}; -1 when the room does not exist, -2 for a duplicate message id.
 */
export const APPEND_MESSAGE = script(
  'appendMessage',
  `${FLUSH}${REPLICAS}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return -2 end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], seq .. '-0', 'id', ARGV[1], 'ts', ARGV[2])
redis.call('HSET', KEYS[4], ARGV[1], seq .. US .. ARGV[3])
local max = tonumber(ARGV[4])
local len = redis.call('XLEN', KEYS[3])
if len > max then
  local old = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', len - max)
  for _, e in ipairs(old) do
    redis.call('HDEL', KEYS[4], e[2][2])
    redis.call('XDEL', KEYS[3], e[1])
  end
end
local need = 0
local want = tonumber(ARGV[9])
if want > 0 then
  need = math.min(want, replicas())
end
if ARGV[5] ~= '' then
  local envelope = ARGV[6] .. seq .. ARGV[7]
  if need > 0 then
    redis.call('RPUSH', KEYS[5], seq .. US .. envelope)
  else
    flush(KEYS[5], nil, ARGV[8], ARGV[5])
    redis.call(ARGV[8], ARGV[5], envelope)
  end
end
return {seq, need}
`,
);

/**
 * KEYS: outbox. ARGV: seq, publish command, channel.
 * Publishes the outbox's entries up to seq, in order (after WAIT saw them
 * replicated: the replication stream is in order, so every entry below seq is
 * replicated too). Returns how many.
 */
export const FLUSH_OUTBOX = script(
  'flushOutbox',
  `${FLUSH}
return flush(KEYS[1], tonumber(ARGV[1]), ARGV[2], ARGV[3])
`,
);

/** KEYS: seq, outbox. The latest seq readers may see: below the outbox. */
export const LATEST_SEQ = script(
  'latestSeq',
  `${VISIBLE}
return outboxHead(KEYS[2]) or tonumber(redis.call('GET', KEYS[1]) or '0')
`,
);

/**
 * KEYS: hist, msgs, outbox. ARGV: 'asc' | 'desc', start id, end id, count.
 * The records, in stream order (desc when asked), without those still in the
 * outbox (not yet published).
 */
export const GET_HISTORY = script(
  'getHistory',
  `${VISIBLE}
local stop = ARGV[3]
local visible = outboxHead(KEYS[3])
if visible then
  if visible < 1 then return {} end
  if stop == '+' or tonumber(stop) > visible then stop = tostring(visible) end
end
local entries
if ARGV[1] == 'asc' then
  entries = redis.call('XRANGE', KEYS[1], ARGV[2], stop, 'COUNT', ARGV[4])
else
  entries = redis.call('XREVRANGE', KEYS[1], stop, ARGV[2], 'COUNT', ARGV[4])
end
local out = {}
for _, e in ipairs(entries) do
  local v = redis.call('HGET', KEYS[2], e[2][2])
  if v then out[#out + 1] = v end
end
return out
`,
);

/**
 * KEYS: msgs. ARGV: messageId, kind, then
 *   edit:   content literal, by literal, at literal, versions to keep
 *   delete: by literal, at literal, versions to keep
 *   react:  emoji literal, user literal, '1' add / '0' remove, max distinct reactions
 *   reply:  at literal (threads: replyCount + 1, lastReplyAt the later one; a deleted message is unchanged)
 * Returns nil (no such message) or {changed (0/1, or -1 for a new reaction
 * refused by the limit), record}.
 *
 * Same semantics as applyMutation (backend-helpers.ts): an edit pushes the
 * previous content (with editedBy ?? userId, editedAt ?? timestamp) to
 * versions; a delete of a deleted message changes nothing, otherwise pushes a
 * version, sets deleted/deletedBy/deletedAt and empties the content; a
 * reaction is one per user per emoji, emojis keep their first-reaction order,
 * the last user's removal drops the emoji, and a no-op reports changed = 0.
 * Values are JSON literals compared as strings (JSON.stringify is deterministic
 * for strings), so a reaction named "__proto__" is just another key.
 */
export const UPDATE_MESSAGE = script(
  'updateMessage',
  `
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return nil end
local f = split(rec, US)
local function present(v) return v ~= '' and v ~= 'null' end
local function truthy(v)
  return v ~= '' and v ~= 'null' and v ~= 'false' and v ~= '0' and v ~= '-0' and v ~= '""'
end
-- A JSON array literal of objects with only its last keep elements. Scans with
-- string.find (strings are skipped whole, escapes included), in linear time;
-- no JSON decoding, so lone surrogate escapes stay as they are.
local function trimVersions(arr, keep)
  local starts = {}
  local depth, i, n = 0, 2, #arr
  while i < n do
    local j = string.find(arr, '["{}%[%]]', i)
    if not j or j >= n then break end
    local c = string.sub(arr, j, j)
    if c == '"' then
      local k = j + 1
      while true do
        local q = string.find(arr, '["\\\\]', k)
        if not q then k = n; break end
        if string.sub(arr, q, q) == '"' then k = q + 1; break end
        k = q + 2
      end
      i = k
    else
      if c == '{' or c == '[' then
        if depth == 0 then starts[#starts + 1] = j end
        depth = depth + 1
      else
        depth = depth - 1
      end
      i = j + 1
    end
  end
  if #starts <= keep then return arr end
  return '[' .. string.sub(arr, starts[#starts - keep + 1])
end
local function pushVersion(keep)
  local by = present(f[6]) and f[6] or f[2]
  local at = present(f[5]) and f[5] or f[3]
  local v = '{"content":' .. f[4] .. ',"editedBy":' .. by .. ',"editedAt":' .. at .. '}'
  if f[11] == '' or f[11] == 'null' or f[11] == '[]' then
    f[11] = '[' .. v .. ']'
  else
    f[11] = string.sub(f[11], 1, -2) .. ',' .. v .. ']'
  end
  f[11] = trimVersions(f[11], keep)
end
local kind = ARGV[2]
local changed = 0
if kind == 'edit' then
  pushVersion(tonumber(ARGV[6]))
  f[4] = ARGV[3]
  f[5] = ARGV[5]
  f[6] = ARGV[4]
  changed = 1
elseif kind == 'delete' then
  if not truthy(f[7]) then
    pushVersion(tonumber(ARGV[5]))
    f[7] = 'true'
    f[8] = ARGV[3]
    f[9] = ARGV[4]
    f[4] = '""'
    changed = 1
  end
elseif kind == 'react' then
  local emoji, user, add = ARGV[3], ARGV[4], ARGV[5] == '1'
  local groups = {}
  if f[10] ~= '' then groups = split(f[10], RS) end
  local gi, items = nil, nil
  for i, g in ipairs(groups) do
    local it = split(g, GS)
    if it[1] == emoji then gi = i; items = it; break end
  end
  local has = false
  if items then
    for j = 2, #items do if items[j] == user then has = true; break end end
  end
  if add and not gi and #groups >= tonumber(ARGV[6]) then
    return {-1, rec}
  end
  if add ~= has then
    if add then
      if gi then groups[gi] = groups[gi] .. GS .. user else groups[#groups + 1] = emoji .. GS .. user end
    else
      local keep = {items[1]}
      for j = 2, #items do if items[j] ~= user then keep[#keep + 1] = items[j] end end
      if #keep == 1 then table.remove(groups, gi) else groups[gi] = table.concat(keep, GS) end
    end
    f[10] = table.concat(groups, RS)
    changed = 1
  end
elseif kind == 'reply' then
  -- Fields 13 and 14 are absent in records written before threads.
  if not truthy(f[7]) then
    f[13] = tostring((tonumber(f[13] or '') or 0) + 1)
    if f[14] == nil or f[14] == '' or ARGV[3] > f[14] then f[14] = ARGV[3] end
    changed = 1
  end
else
  return redis.error_reply('unknown mutation kind ' .. kind)
end
if changed == 1 then
  rec = table.concat(f, US)
  redis.call('HSET', KEYS[1], ARGV[1], rec)
end
return {changed, rec}
`,
);

/**
 * KEYS: hist, seq, outbox. The lowest seq in history, or latest + 1 when
 * history is empty (both as readers see them: below the outbox).
 */
export const OLDEST_SEQ = script(
  'oldestSeq',
  `${VISIBLE}
local latest = outboxHead(KEYS[3]) or tonumber(redis.call('GET', KEYS[2]) or '0')
local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #e > 0 then
  local first = tonumber(string.match(e[1][1], '^(%d+)'))
  if first <= latest then return first end
end
return latest + 1
`,
);

/**
 * KEYS: hist, msgs. ARGV: maxCount, olderThan ms ('' = no age limit).
 * Drops the oldest entries beyond maxCount, then, from there, those whose
 * timestamp is older than olderThan (stopping at the first recent one).
 * Returns how many were dropped.
 */
export const TRIM_HISTORY = script(
  'trimHistory',
  `
local len = redis.call('XLEN', KEYS[1])
local n = len - tonumber(ARGV[1])
if n < 0 then n = 0 end
local drop = {}
if n > 0 then drop = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n) end
if ARGV[2] ~= '' then
  local cutoff = tonumber(ARGV[2])
  local start = '-'
  if #drop > 0 then start = '(' .. drop[#drop][1] end
  local stop = false
  while not stop do
    local batch = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 100)
    if #batch == 0 then break end
    for _, e in ipairs(batch) do
      local ts = tonumber(e[2][4])
      if ts and ts < cutoff then drop[#drop + 1] = e else stop = true; break end
    end
    start = '(' .. batch[#batch][1]
  end
end
for _, e in ipairs(drop) do
  redis.call('HDEL', KEYS[2], e[2][2])
  redis.call('XDEL', KEYS[1], e[1])
end
return #drop
`,
);
