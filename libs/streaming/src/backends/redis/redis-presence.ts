import { EXPIRED_MEMBER_GRACE_MS, PresenceRecord, PresenceStore } from '../../interfaces';
import { MAX_COUNT } from './redis-core';
import { RedisNodes } from './redis-nodes';
import {
  LIST_EXPIRING,
  REMOVE_EXPIRING,
  SET_USER_CONNECTIONS,
  TOUCH_EXPIRING,
} from './scripts/presence-scripts';

/**
 * The PresenceStore of the Redis backend: presence records (one string per
 * user with PX), the user/node connection directory, the per-user connection
 * counts and the expiring sets. Key layout in redis-keys.ts; the expiring sets
 * and the connection counts are single-key scripts (scripts/presence-scripts.ts),
 * so each is atomic, with expiry by the Redis clock.
 */
export abstract class RedisPresence extends RedisNodes implements PresenceStore {
  // ------------------------------------------------------------ presence

  async setPresence(record: PresenceRecord, ttlSeconds: number): Promise<void> {
    const px = Math.max(1, Math.min(Math.round(ttlSeconds * 1000), MAX_COUNT) || 1);
    await this.exec((c) => c.set(this.keys.presence(record.userId), JSON.stringify(record), 'PX', px));
  }

  async getPresence(userIds: string[]): Promise<PresenceRecord[]> {
    const values = await Promise.all(userIds.map((id) => this.exec((c) => c.get(this.keys.presence(id)))));
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as PresenceRecord);
  }

  async removePresence(userId: string): Promise<void> {
    await this.exec((c) => c.del(this.keys.presence(userId)));
  }

  // ------------------------------------------------------------ connection directory

  /*
   * Two sets on two slots: the node's users and the user's nodes. Adding
   * writes the node's set first, removing clears the user's set first, so a
   * failure half-way leaves the user listed under the node only: nodeUsers is
   * always a superset, and reaping a dead node (nodeUsers, then
   * removeUserNode for each) never misses a user.
   */

  async addUserNode(userId: string, nodeId: string): Promise<void> {
    await this.exec((c) => c.sadd(this.keys.nodeUsers(nodeId), userId));
    await this.exec((c) => c.sadd(this.keys.userNodes(userId), nodeId));
  }

  async removeUserNode(userId: string, nodeId: string): Promise<void> {
    await this.exec((c) => c.srem(this.keys.userNodes(userId), nodeId));
    await this.exec((c) => c.srem(this.keys.nodeUsers(nodeId), userId));
  }

  async userNodes(userId: string): Promise<string[]> {
    return this.exec((c) => c.smembers(this.keys.userNodes(userId)));
  }

  async nodeUsers(nodeId: string): Promise<string[]> {
    return this.exec((c) => c.smembers(this.keys.nodeUsers(nodeId)));
  }

  async setUserConnections(
    userId: string,
    nodeId: string,
    count: number,
    limits: { max?: number; deadNodes?: readonly string[] } = {},
  ): Promise<boolean> {
    const v = await this.run(
      SET_USER_CONNECTIONS,
      [this.keys.userConnections(userId)],
      [nodeId, Math.max(0, Math.floor(count)), limits.max ?? '', ...(limits.deadNodes ?? [])],
    );
    return Number(v) === 1;
  }

  async userConnections(userId: string): Promise<Record<string, number>> {
    const all = await this.exec((c) => c.hgetall(this.keys.userConnections(userId)));
    return Object.fromEntries(Object.entries(all).map(([n, v]) => [n, Number(v)]));
  }

  // ------------------------------------------------------------ expiring sets

  async touchExpiring(
    key: string,
    member: string,
    ttlMs: number,
    max: number,
  ): Promise<{ expires: number; added: boolean } | null> {
    const ttl = Math.max(1, Math.min(Math.ceil(ttlMs) || 1, MAX_COUNT));
    const v = (await this.run(
      TOUCH_EXPIRING,
      [this.keys.expiringSet(key)],
      [member, ttl, max, EXPIRED_MEMBER_GRACE_MS],
    )) as [string, number] | null;
    return v ? { expires: Number(v[0]), added: Number(v[1]) === 1 } : null;
  }

  async removeExpiring(key: string, member: string, stamp?: number): Promise<boolean> {
    const v = await this.run(REMOVE_EXPIRING, [this.keys.expiringSet(key)], [member, stamp ?? '']);
    return Number(v) === 1;
  }

  async listExpiring(key: string): Promise<string[]> {
    return (await this.run(LIST_EXPIRING, [this.keys.expiringSet(key)], [])) as string[];
  }
}
