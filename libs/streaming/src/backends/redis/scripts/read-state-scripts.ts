/**
 * The Lua script of the ReadStateStore (redis-read-state.ts). It touches the
 * keys of one room only (see lua-script.ts).
 */
import { script } from './lua-script';

/**
 * KEYS: room, reads (hash userId -> seq). ARGV: userId, seq.
 * Stores max(stored, seq) while the room exists; returns the stored value (0 without the room).
 */
export const MARK_READ = script(
  'markRead',
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local seq = tonumber(ARGV[2])
if seq > cur then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return seq
end
return cur
`,
);
