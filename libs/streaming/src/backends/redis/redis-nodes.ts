import type { NodeDirectory, NodeInfo, StreamingBackend } from '../../interfaces';
import { MAX_COUNT, RedisCore } from './redis-core';
import { INCREMENT_COUNTER, LIST_NODES, REGISTER_NODE, REMOVE_NODE } from './scripts/node-scripts';

/**
 * The node registry (NodeDirectory) and the counters of the Redis backend.
 *
 * Node registry: one hash tag `{nodes}`, a hash `info` nodeId -> JSON and a
 * zset `expiry` nodeId -> expiry ms by the Redis clock, so that nodes with
 * skewed clocks agree on who is alive; `listNodes` prunes the expired ones.
 *
 * Counters: one key per counter (`{c:<key>}`), incremented by a script that
 * sets the TTL only when it creates the key, so a window runs from the first
 * increment, not the last.
 */
export abstract class RedisNodes
  extends RedisCore
  implements NodeDirectory, Pick<StreamingBackend, 'incrementCounter' | 'getCounter'>
{
  // ------------------------------------------------------------ node registry

  async registerNode(info: NodeInfo, ttlSeconds: number): Promise<void> {
    const ttl = Math.max(1, Math.min(Math.round(ttlSeconds * 1000), MAX_COUNT) || 1);
    await this.run(
      REGISTER_NODE,
      [this.keys.nodeInfo(), this.keys.nodeExpiry()],
      [info.nodeId, JSON.stringify(info), ttl],
    );
  }

  async listNodes(): Promise<NodeInfo[]> {
    const values = (await this.run(
      LIST_NODES,
      [this.keys.nodeInfo(), this.keys.nodeExpiry()],
      [],
    )) as string[];
    return values.map((v) => JSON.parse(v) as NodeInfo);
  }

  async removeNode(nodeId: string): Promise<void> {
    await this.run(REMOVE_NODE, [this.keys.nodeInfo(), this.keys.nodeExpiry()], [nodeId]);
  }

  // ------------------------------------------------------------ counters

  async incrementCounter(key: string, by: number, ttlMs: number): Promise<number> {
    if (!Number.isFinite(by)) throw new Error(`cannot increment a counter by ${by}`);
    const ttl = Number.isNaN(ttlMs) ? 0 : Math.max(0, Math.min(Math.ceil(ttlMs), MAX_COUNT));
    const v = await this.run(
      INCREMENT_COUNTER,
      [this.keys.counter(key)],
      [by, ttl, Number.isInteger(by) ? '0' : '1'],
    );
    return Number(v);
  }

  async getCounter(key: string): Promise<number> {
    const v = await this.exec((c) => c.get(this.keys.counter(key)));
    return v === null ? 0 : Number(v);
  }
}
