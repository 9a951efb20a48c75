import type { NodeDirectory, NodeInfo } from '../../interfaces';
import { Expiring, jsonBytes } from './nats-codec';
import { NatsCore } from './nats-core';
import { ttlMsFromSeconds } from './nats-util';

/**
 * The NATS backend's {@link NodeDirectory} and counters (layer 1, on
 * {@link NatsCore}).
 *
 * Layout:
 * - nodes: node -> `{ v: NodeInfo, e: expiry }`
 * - counters: counter key -> `{ v: value, e: expiry }`
 *
 * Both hold values with their own expiry (by this node's clock): treated as
 * absent once expired and removed lazily; the bucket max age
 * (`maxTtlSeconds`) collects abandoned ones.
 */
export abstract class NatsNodes extends NatsCore implements NodeDirectory {
  // ------------------------------------------------------------ counters

  async incrementCounter(key: string, by: number, ttlMs: number): Promise<number> {
    if (!Number.isFinite(by)) throw new Error(`cannot increment a counter by ${by}`);
    const ttl = Number.isNaN(ttlMs) ? 0 : Math.max(0, Math.min(Math.ceil(ttlMs), Number.MAX_SAFE_INTEGER));
    return this.exec((s) =>
      this.cas<Expiring<number>, number>(s, 'counters', this.names.counter(key), (cur) => {
        const now = Date.now();
        // The expiry runs from the counter's creation; increments keep it.
        const next: Expiring<number> =
          cur && cur.e > now ? { v: cur.v + by, e: cur.e } : { v: by, e: now + ttl };
        return { result: next.v, next };
      }),
    );
  }

  async getCounter(key: string): Promise<number> {
    return this.exec(async (s) => {
      const c = await this.value<Expiring<number>>(s.kv.counters, this.names.counter(key));
      return c && c.e > Date.now() ? c.v : 0;
    });
  }

  // ------------------------------------------------------------ node registry

  async registerNode(info: NodeInfo, ttlSeconds: number): Promise<void> {
    await this.exec(async (s) => {
      const value: Expiring<NodeInfo> = { v: info, e: Date.now() + ttlMsFromSeconds(ttlSeconds) };
      await s.kv.nodes.put(this.names.node(info.nodeId), jsonBytes(value));
    });
  }

  async listNodes(): Promise<NodeInfo[]> {
    return this.exec(async (s) => {
      const entries = await this.listValues<Expiring<NodeInfo>>(s.kv.nodes, '>');
      const now = Date.now();
      const expired = entries.filter((e) => e.value.e <= now);
      if (expired.length > 0) {
        await Promise.all(expired.map((e) => this.deleteIfUnchanged(s.kv.nodes, e.key, e.revision)));
      }
      return entries.filter((e) => e.value.e > now).map((e) => e.value.v);
    });
  }

  async removeNode(nodeId: string): Promise<void> {
    await this.exec((s) => this.purge(s, 'nodes', this.names.node(nodeId)));
  }
}
