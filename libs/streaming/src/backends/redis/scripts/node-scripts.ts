/**
 * The Lua scripts of the NodeDirectory and the counters (redis-nodes.ts). The
 * node registry is one hash tag (`{nodes}`), a counter is its own (see
 * lua-script.ts); expiry is by the Redis clock, never a node's.
 */
import { script } from './lua-script';

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
