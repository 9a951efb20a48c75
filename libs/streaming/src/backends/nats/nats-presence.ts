import { EXPIRED_MEMBER_GRACE_MS } from '../../interfaces';
import type { PresenceRecord, PresenceStore } from '../../interfaces';
import { Expiring, jsonBytes, utf8 } from './nats-codec';
import { DELETE } from './nats-core';
import { decodeToken } from './nats-keys';
import { NatsNodes } from './nats-nodes';
import { batched, ttlMsFromSeconds } from './nats-util';

/**
 * The NATS backend's {@link PresenceStore} (layer 2, on {@link NatsNodes}).
 *
 * Layout:
 * - presence: user -> `{ v: PresenceRecord, e: expiry }` (absent once expired,
 *   removed lazily; the bucket max age collects abandoned ones)
 * - directory: `u.<user>` -> the user's nodes; `n.<node>.<user>` -> marker;
 *   `c.<user>` -> the user's connection count per node
 * - counters: `x.<key>` -> an expiring set, one JSON object `{ member: expiry }`
 */
export abstract class NatsPresence extends NatsNodes implements PresenceStore {
  // ------------------------------------------------------------ presence

  async setPresence(record: PresenceRecord, ttlSeconds: number): Promise<void> {
    await this.exec(async (s) => {
      const value: Expiring<PresenceRecord> = { v: record, e: Date.now() + ttlMsFromSeconds(ttlSeconds) };
      await s.kv.presence.put(this.names.presence(record.userId), jsonBytes(value));
    });
  }

  async getPresence(userIds: string[]): Promise<PresenceRecord[]> {
    return this.exec(async (s) => {
      const slots = await batched(userIds, (id) =>
        this.slot<Expiring<PresenceRecord>>(s.kv.presence, this.names.presence(id)),
      );
      const now = Date.now();
      const out: PresenceRecord[] = [];
      const expired: Promise<void>[] = [];
      slots.forEach((slot, i) => {
        if (!slot.value) return;
        if (slot.value.e > now) out.push(slot.value.v);
        else
          expired.push(this.deleteIfUnchanged(s.kv.presence, this.names.presence(userIds[i]), slot.revision));
      });
      await Promise.all(expired);
      return out;
    });
  }

  async removePresence(userId: string): Promise<void> {
    await this.exec((s) => this.purge(s, 'presence', this.names.presence(userId)));
  }

  // ------------------------------------------------------------ connection directory

  /*
   * The user's nodes are one value (compare-and-swap); the node's users are one
   * key each (a node may hold many users). Adding writes the node's key first,
   * removing clears the user's value first, so a failure half-way leaves the
   * user listed under the node only: nodeUsers is always a superset, and
   * reaping a dead node (nodeUsers, then removeUserNode for each) misses nobody.
   */

  async addUserNode(userId: string, nodeId: string): Promise<void> {
    await this.exec(async (s) => {
      await s.kv.directory.put(this.names.nodeUser(nodeId, userId), utf8('1'));
      await this.cas<string[], void>(s, 'directory', this.names.userNodes(userId), (cur) =>
        cur?.includes(nodeId) ? { result: undefined } : { result: undefined, next: [...(cur ?? []), nodeId] },
      );
    });
  }

  async removeUserNode(userId: string, nodeId: string): Promise<void> {
    await this.exec(async (s) => {
      await this.cas<string[], void>(s, 'directory', this.names.userNodes(userId), (cur) => {
        if (!cur?.includes(nodeId)) return { result: undefined };
        const next = cur.filter((n) => n !== nodeId);
        return { result: undefined, next: next.length > 0 ? next : DELETE };
      });
      await this.purge(s, 'directory', this.names.nodeUser(nodeId, userId));
    });
  }

  async userNodes(userId: string): Promise<string[]> {
    return this.exec(
      async (s) => (await this.value<string[]>(s.kv.directory, this.names.userNodes(userId))) ?? [],
    );
  }

  async nodeUsers(nodeId: string): Promise<string[]> {
    return this.exec(async (s) => {
      const keys = await this.listKeys(s.kv.directory, this.names.nodeUsersOf(nodeId));
      return keys.map((k) => decodeToken(k.slice(k.lastIndexOf('.') + 1)));
    });
  }

  async setUserConnections(
    userId: string,
    nodeId: string,
    count: number,
    limits: { max?: number; deadNodes?: readonly string[] } = {},
  ): Promise<boolean> {
    return this.exec((s) =>
      this.cas<Record<string, number>, boolean>(s, 'directory', this.names.userConnections(userId), (cur) => {
        // A Map, so that no node id can be mistaken for an object's own machinery (`__proto__`).
        const next = new Map(Object.entries(cur ?? {}));
        for (const dead of limits.deadNodes ?? []) next.delete(dead);
        if (limits.max !== undefined && count > (next.get(nodeId) ?? 0)) {
          let total = count;
          for (const [n, c] of next) if (n !== nodeId) total += c;
          if (total > limits.max) return { result: false };
        }
        if (count > 0) next.set(nodeId, count);
        else next.delete(nodeId);
        return { result: true, next: next.size > 0 ? Object.fromEntries(next) : DELETE };
      }),
    );
  }

  async userConnections(userId: string): Promise<Record<string, number>> {
    return this.exec(
      async (s) =>
        (await this.value<Record<string, number>>(s.kv.directory, this.names.userConnections(userId))) ?? {},
    );
  }

  // ------------------------------------------------------------ expiring sets

  /* One JSON object per set in the counters bucket; expiry by this node's clock. */

  async touchExpiring(
    key: string,
    member: string,
    ttlMs: number,
    max: number,
  ): Promise<{ expires: number; added: boolean } | null> {
    return this.exec((s) =>
      this.cas<Record<string, number>, { expires: number; added: boolean } | null>(
        s,
        'counters',
        this.names.expiringSet(key),
        (cur) => {
          const now = Date.now();
          const next = new Map<string, number>();
          let live = 0;
          for (const [m, e] of Object.entries(cur ?? {})) {
            if (m !== member && e <= now - EXPIRED_MEMBER_GRACE_MS) continue;
            next.set(m, e);
            if (m !== member && e > now) live++;
          }
          const current = next.get(member);
          const added = current === undefined || current <= now;
          if (added && live >= max) return { result: null };
          const expires = Math.max(now + Math.max(1, Math.ceil(ttlMs) || 1), (current ?? 0) + 1);
          next.set(member, expires);
          return { result: { expires, added }, next: Object.fromEntries(next) };
        },
      ),
    );
  }

  async removeExpiring(key: string, member: string, stamp?: number): Promise<boolean> {
    return this.exec((s) =>
      this.cas<Record<string, number>, boolean>(s, 'counters', this.names.expiringSet(key), (cur) => {
        const next = new Map(Object.entries(cur ?? {}));
        const current = next.get(member);
        if (current === undefined || (stamp !== undefined && current !== stamp)) return { result: false };
        next.delete(member);
        return { result: true, next: next.size > 0 ? Object.fromEntries(next) : DELETE };
      }),
    );
  }

  async listExpiring(key: string): Promise<string[]> {
    return this.exec(async (s) => {
      const set = await this.value<Record<string, number>>(s.kv.counters, this.names.expiringSet(key));
      const now = Date.now();
      return Object.entries(set ?? {})
        .filter(([, e]) => e > now)
        .map(([m]) => m);
    });
  }
}
