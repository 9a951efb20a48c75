/**
 * The Lua scripts of the Redis backend. Each one touches the keys of ONE hash
 * tag only (see redis-keys.ts), all of them passed in KEYS, so every script
 * runs atomically on one Redis Cluster slot. Scripts never decode JSON (see
 * redis-codec.ts for the value layouts) and never return Lua booleans (RESP3
 * would turn them into booleans instead of nil / 1).
 */
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** A script and its SHA1, run with EVALSHA (falling back to EVAL once per server). */
export class LuaScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly lua: string,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }
}

/** Run a script on the node owning `keys` (they share one hash tag). */
export async function runScript(
  client: Redis | Cluster,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  try {
    return await (client as Redis).evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
      return (client as Redis).eval(script.lua, keys.length, ...keys, ...args);
    }
    throw err;
  }
}

/** Shared prelude: separators (see redis-codec.ts) and helpers. */
const PRELUDE = `
local US, RS, GS = string.char(31), string.char(30), string.char(29)
local function split(s, sep)
  local out, i = {}, 1
  while true do
    local j = string.find(s, sep, i, true)
    if not j then out[#out + 1] = string.sub(s, i); return out end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

const script = (name: string, body: string): LuaScript => new LuaScript(name, `${PRELUDE}${body}`);

/** KEYS: the 8 room keys (RedisKeys.roomKeyList). ARGV: ownerId, owner value, room field/value pairs. 1 = created, 0 = exists. */
export const CREATE_ROOM = script(
  'createRoom',
  `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
-- Nothing of a room that does not exist may survive (defensive: start clean).
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`,
);

/** KEYS: the 8 room keys. Returns {existed (0/1), member user ids...}. */
export const DELETE_ROOM = script(
  'deleteRoom',
  `
local existed = redis.call('EXISTS', KEYS[1])
local members = redis.call('HKEYS', KEYS[2])
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
local out = {existed}
for i = 1, #members do out[i + 1] = members[i] end
return out
`,
);

/** KEYS: room. ARGV: field/value pairs. Returns the whole hash (flat) or nil when the room does not exist. */
export const UPDATE_ROOM = script(
  'updateRoom',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if #ARGV > 0 then redis.call('HSET', KEYS[1], unpack(ARGV)) end
return redis.call('HGETALL', KEYS[1])
`,
);

/**
 * KEYS: room, members. ARGV: userId, member value, checkOnly ('1' / '0').
 * Returns no_room | exists | full | added (or ok when checkOnly).
 */
export const ADD_MEMBER = script(
  'addMember',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'no_room' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'exists' end
local max = redis.call('HGET', KEYS[1], 'maxMembers')
if max then max = tonumber(max) end
if max and redis.call('HLEN', KEYS[2]) >= max then return 'full' end
if ARGV[3] == '1' then return 'ok' end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 'added'
`,
);

/**
 * KEYS: the user's room index (zset roomId -> reservation time). ARGV: roomId, limit ('' = none).
 * Returns present (already indexed) | user_limit | reserved.
 */
export const RESERVE_USER_ROOM = script(
  'reserveUserRoom',
  `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 'present' end
if ARGV[2] ~= '' and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 'user_limit' end
redis.call('ZADD', KEYS[1], nowMs(), ARGV[1])
return 'reserved'
`,
);

/** KEYS: the user's room index. ARGV: graceMs, candidate room ids. Drops candidates older than graceMs; returns how many. */
export const PRUNE_USER_ROOMS = script(
  'pruneUserRooms',
  `
local cutoff = nowMs() - tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) <= cutoff then
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
`,
);

/** KEYS: members. ARGV: userId, role. Replaces the role token before the first US. 1 / 0. */
export const SET_MEMBER_ROLE = script(
  'setMemberRole',
  `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local i = string.find(v, US, 1, true)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. string.sub(v, i))
return 1
`,
);

/** KEYS: room, a hash of the room. ARGV: field, value. Sets only while the room exists. 1 / 0. */
export const HSET_IF_ROOM = script(
  'hsetIfRoom',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`,
);

/** KEYS: restrictions. ARGV: field, now (ms). The live value, or nil (an expired one is deleted). */
export const GET_RESTRICTION = script(
  'getRestriction',
  `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return nil end
local u = string.sub(v, 1, string.find(v, US, 1, true) - 1)
if u ~= '' and tonumber(u) <= tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return nil
end
return v
`,
);

/** KEYS: restrictions. ARGV: now (ms). The live values; expired ones are deleted. */
export const LIST_RESTRICTIONS = script(
  'listRestrictions',
  `
local all = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #all, 2 do
  local v = all[i + 1]
  local u = string.sub(v, 1, string.find(v, US, 1, true) - 1)
  if u ~= '' and tonumber(u) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = v
  end
end
return out
`,
);

/** KEYS: room, modlog. ARGV: entry JSON, maxEntries. */
export const APPEND_MODLOG = script(
  'appendModlog',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local max = tonumber(ARGV[2])
if max <= 0 then redis.call('DEL', KEYS[2]); return 1 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -max, -1)
return 1
`,
);

/**
 * KEYS: room, seq, hist, msgs.
 * ARGV: messageId, timestamp ms, record tail, maxHistory, channel ('' = no publish), envelope prefix, envelope suffix.
 *
 * One atomic step: next seq, stream entry `<seq>-0`, record, trim to maxHistory,
 * and PUBLISH of `prefix .. seq .. suffix`. Because the PUBLISH happens inside
 * the script, every subscriber on every node sees a room's messages in seq
 * order, whatever the number of concurrent senders.
 * Returns the seq, -1 when the room does not exist, -2 for a duplicate message id.
 */
export const APPEND_MESSAGE = script(
  'appendMessage',
  `
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
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6] .. seq .. ARGV[7]) end
return seq
`,
);

/** KEYS: hist, msgs. ARGV: 'asc' | 'desc', start id, end id, count. The records, in stream order (desc when asked). */
export const GET_HISTORY = script(
  'getHistory',
  `
local entries
if ARGV[1] == 'asc' then
  entries = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
else
  entries = redis.call('XREVRANGE', KEYS[1], ARGV[3], ARGV[2], 'COUNT', ARGV[4])
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

/** KEYS: hist, seq. The lowest seq in history, or latest + 1 when history is empty. */
export const OLDEST_SEQ = script(
  'oldestSeq',
  `
local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #e > 0 then return tonumber(string.match(e[1][1], '^(%d+)')) end
return (tonumber(redis.call('GET', KEYS[2])) or 0) + 1
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

/**
 * KEYS: counter. ARGV: by, ttl ms, '1' for a float increment.
 * The TTL is set only when the increment creates the key: it runs from creation.
 * Returns the new value as a string.
 */
export const INCREMENT_COUNTER = script(
  'incrementCounter',
  `
local existed = redis.call('EXISTS', KEYS[1])
local v
if ARGV[3] == '1' then
  v = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
else
  v = redis.call('INCRBY', KEYS[1], ARGV[1])
end
if existed == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return tostring(v)
`,
);

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

/** KEYS: node info, node expiry. ARGV: nodeId, JSON, ttl ms. Expiry by the Redis clock. */
export const REGISTER_NODE = script(
  'registerNode',
  `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], nowMs() + tonumber(ARGV[3]), ARGV[1])
return 1
`,
);

/** KEYS: node info, node expiry. Prunes expired nodes, returns the live ones' JSON. */
export const LIST_NODES = script(
  'listNodes',
  `
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', nowMs())
for _, id in ipairs(dead) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return redis.call('HVALS', KEYS[1])
`,
);

/** KEYS: node info, node expiry. ARGV: nodeId. */
export const REMOVE_NODE = script(
  'removeNode',
  `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`,
);

/**
 * KEYS: the user's connection counts (hash nodeId -> count). ARGV: nodeId,
 * count, max ('' for none), then the dead nodes to drop. 1 = recorded,
 * 0 = refused (the total would pass max).
 */
export const SET_USER_CONNECTIONS = script(
  'setUserConnections',
  `
for i = 4, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
local count = tonumber(ARGV[2])
if ARGV[3] ~= '' then
  local own = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  if count > own then
    local all = redis.call('HGETALL', KEYS[1])
    local total = count
    for i = 1, #all, 2 do
      if all[i] ~= ARGV[1] then total = total + tonumber(all[i + 1]) end
    end
    if total > tonumber(ARGV[3]) then return 0 end
  end
end
if count > 0 then redis.call('HSET', KEYS[1], ARGV[1], count) else redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
`,
);

/**
 * KEYS: the set (hash member -> expiry ms, Redis clock). ARGV: member, ttl ms,
 * max, grace ms. Returns {expires, 1 if added} or nil when full. Members
 * expired for over the grace are dropped; the key lives until its newest
 * expiry plus the grace.
 */
export const TOUCH_EXPIRING = script(
  'touchExpiring',
  `
local now = nowMs()
local grace = tonumber(ARGV[4])
local all = redis.call('HGETALL', KEYS[1])
local live, latest, current = 0, 0, nil
for i = 1, #all, 2 do
  local e = tonumber(all[i + 1])
  if all[i] == ARGV[1] then
    current = e
  elseif e <= now - grace then
    redis.call('HDEL', KEYS[1], all[i])
  else
    if e > now then live = live + 1 end
    if e > latest then latest = e end
  end
end
local added = current == nil or current <= now
if added and live >= tonumber(ARGV[3]) then return nil end
local expires = now + tonumber(ARGV[2])
if current ~= nil and expires <= current then expires = current + 1 end
redis.call('HSET', KEYS[1], ARGV[1], expires)
if expires > latest then latest = expires end
redis.call('PEXPIREAT', KEYS[1], latest + grace)
local flag = 0
if added then flag = 1 end
return {tostring(expires), flag}
`,
);

/** KEYS: the set. ARGV: member, stamp ('' for any). 1 = removed. */
export const REMOVE_EXPIRING = script(
  'removeExpiring',
  `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
if ARGV[2] ~= '' and tonumber(cur) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`,
);

/** KEYS: the set. Returns its live members (Redis clock). */
export const LIST_EXPIRING = script(
  'listExpiring',
  `
local now = nowMs()
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now then out[#out + 1] = all[i] end
end
return out
`,
);
