/**
 * The Lua scripts of the Redis backend. Each one touches the keys of ONE hash
 * tag only (see redis-keys.ts), all of them passed in KEYS, so every script
 * runs atomically on one Redis Cluster slot. Scripts never decode JSON (see
 * redis-codec.ts for the value layouts) and never return Lua booleans (RESP3
 * would turn them into booleans instead of nil / 1).
 *
 * This file holds what every script shares: {@link LuaScript}, {@link runScript}
 * and the Lua prelude. The scripts themselves live next to it, one file per
 * port: room-scripts.ts (RoomStore), broker-scripts.ts (Broker: routed publish
 * and the message log), presence-scripts.ts (PresenceStore) and
 * node-scripts.ts (NodeDirectory and counters).
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

/** A script whose body runs after the shared prelude. */
export const script = (name: string, body: string): LuaScript => new LuaScript(name, `${PRELUDE}${body}`);
