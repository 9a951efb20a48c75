/**
 * The Lua scripts of the PresenceStore (redis-presence.ts): a user's
 * connection counts and the expiring sets. Each touches one key (see
 * lua-script.ts); expiry is by the Redis clock, never a node's.
 */
import { script } from './lua-script';

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
