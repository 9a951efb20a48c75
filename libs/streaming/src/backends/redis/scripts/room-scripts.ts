/**
 * The Lua scripts of the RoomStore (redis-rooms.ts): rooms, members, the
 * user's room index, restrictions, invitations and the moderation log. Each
 * touches the keys of one room, or of one user, never both (see lua-script.ts).
 */
import { script } from './lua-script';

/** KEYS: every room key (RedisKeys.roomKeyList, the room hash first). ARGV: ownerId, owner value, room field/value pairs. 1 = created, 0 = exists. */
export const CREATE_ROOM = script(
  'createRoom',
  `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
-- Nothing of a room that does not exist may survive (defensive: start clean).
redis.call('UNLINK', unpack(KEYS, 2))
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`,
);

/** KEYS: every room key (room hash, members first). Returns {existed (0/1), member user ids...}. */
export const DELETE_ROOM = script(
  'deleteRoom',
  `
local existed = redis.call('EXISTS', KEYS[1])
local members = redis.call('HKEYS', KEYS[2])
redis.call('UNLINK', unpack(KEYS))
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
