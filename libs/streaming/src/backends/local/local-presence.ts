import {
  EXPIRED_MEMBER_GRACE_MS,
  NodeDirectory,
  NodeInfo,
  PresenceRecord,
  PresenceStore,
} from '../../interfaces';

/** A deep copy: what the local stores hand out can be changed by the caller without touching the store. */
export const clone = <T>(v: T): T => structuredClone(v);

/** A copy of a record whose fields are all primitives (members, presence): no deep walk needed. */
export const copyFlat = <T extends object>(v: T): T => ({ ...v });

/** A copy of a room record: its fields are primitives but for `metadata`, copied deeply only when it has keys. */
export const copyRoom = <T extends { metadata: Record<string, unknown> }>(v: T): T => {
  let empty = true;
  for (const _key in v.metadata) {
    empty = false;
    break;
  }
  return { ...v, metadata: empty ? {} : structuredClone(v.metadata) };
};

/**
 * The local backend's presence store, node directory and counters: maps in
 * this process, each entry with its own expiry, swept now and then so the
 * maps stay bounded by live keys.
 */
export class LocalPresence implements PresenceStore, NodeDirectory {
  readonly distributed: boolean = false;

  protected readonly presence = new Map<string, { record: PresenceRecord; expires: number }>();
  protected readonly counters = new Map<string, { value: number; expires: number }>();
  /** userId -> nodeId -> open connections. */
  protected readonly userConns = new Map<string, Map<string, number>>();
  /** key -> member -> expiry (epoch ms). */
  protected readonly expiring = new Map<string, Map<string, number>>();
  protected readonly nodes = new Map<string, { info: NodeInfo; expires: number }>();

  async setPresence(record: PresenceRecord, ttlSeconds: number): Promise<void> {
    this.presence.set(record.userId, { record: copyFlat(record), expires: Date.now() + ttlSeconds * 1000 });
  }

  async getPresence(userIds: string[]): Promise<PresenceRecord[]> {
    const now = Date.now();
    const out: PresenceRecord[] = [];
    for (const id of userIds) {
      const p = this.presence.get(id);
      if (!p) continue;
      if (p.expires <= now) this.presence.delete(id);
      else out.push(copyFlat(p.record));
    }
    return out;
  }

  async removePresence(userId: string): Promise<void> {
    this.presence.delete(userId);
  }

  protected readonly userNodeIndex = new Map<string, Set<string>>();
  protected readonly nodeUserIndex = new Map<string, Set<string>>();

  protected static link(index: Map<string, Set<string>>, key: string, value: string, add: boolean): void {
    let set = index.get(key);
    if (add) {
      if (!set) index.set(key, (set = new Set()));
      set.add(value);
    } else if (set) {
      set.delete(value);
      if (set.size === 0) index.delete(key);
    }
  }

  async addUserNode(userId: string, nodeId: string): Promise<void> {
    LocalPresence.link(this.userNodeIndex, userId, nodeId, true);
    LocalPresence.link(this.nodeUserIndex, nodeId, userId, true);
  }

  async removeUserNode(userId: string, nodeId: string): Promise<void> {
    LocalPresence.link(this.userNodeIndex, userId, nodeId, false);
    LocalPresence.link(this.nodeUserIndex, nodeId, userId, false);
  }

  async userNodes(userId: string): Promise<string[]> {
    return [...(this.userNodeIndex.get(userId) ?? [])];
  }

  async nodeUsers(nodeId: string): Promise<string[]> {
    return [...(this.nodeUserIndex.get(nodeId) ?? [])];
  }

  async setUserConnections(
    userId: string,
    nodeId: string,
    count: number,
    limits: { max?: number; deadNodes?: readonly string[] } = {},
  ): Promise<boolean> {
    const nodes = this.userConns.get(userId) ?? new Map<string, number>();
    for (const dead of limits.deadNodes ?? []) nodes.delete(dead);
    const own = nodes.get(nodeId) ?? 0;
    if (limits.max !== undefined && count > own) {
      let total = count;
      for (const [n, c] of nodes) if (n !== nodeId) total += c;
      if (total > limits.max) return false;
    }
    if (count > 0) nodes.set(nodeId, count);
    else nodes.delete(nodeId);
    if (nodes.size > 0) this.userConns.set(userId, nodes);
    else this.userConns.delete(userId);
    return true;
  }

  async userConnections(userId: string): Promise<Record<string, number>> {
    return Object.fromEntries(this.userConns.get(userId) ?? []);
  }

  async touchExpiring(
    key: string,
    member: string,
    ttlMs: number,
    max: number,
  ): Promise<{ expires: number; added: boolean } | null> {
    const now = Date.now();
    this.sweepExpired(now);
    const set = this.expiring.get(key) ?? new Map<string, number>();
    let live = 0;
    for (const [m, e] of set) {
      if (e <= now - EXPIRED_MEMBER_GRACE_MS) set.delete(m);
      else if (e > now && m !== member) live++;
    }
    const current = set.get(member);
    const added = current === undefined || current <= now;
    if (added && live >= max) return null;
    // A renewal always moves the stamp, so an owner's stamp never matches a later touch.
    const expires = Math.max(now + ttlMs, (current ?? 0) + 1);
    set.set(member, expires);
    this.expiring.set(key, set);
    return { expires, added };
  }

  async removeExpiring(key: string, member: string, stamp?: number): Promise<boolean> {
    const set = this.expiring.get(key);
    const current = set?.get(member);
    if (!set || current === undefined || (stamp !== undefined && current !== stamp)) return false;
    set.delete(member);
    if (set.size === 0) this.expiring.delete(key);
    return true;
  }

  async listExpiring(key: string): Promise<string[]> {
    const now = Date.now();
    return [...(this.expiring.get(key) ?? [])].filter(([, e]) => e > now).map(([m]) => m);
  }

  protected lastSweep = Date.now();

  /** Drop expired counters and presence records now and then, so the maps stay bounded by live keys. */
  protected sweepExpired(now: number): void {
    if (now - this.lastSweep < 10_000) return;
    this.lastSweep = now;
    for (const [k, c] of this.counters) if (c.expires <= now) this.counters.delete(k);
    for (const [k, p] of this.presence) if (p.expires <= now) this.presence.delete(k);
    for (const [k, set] of this.expiring) {
      for (const [m, e] of set) if (e <= now - EXPIRED_MEMBER_GRACE_MS) set.delete(m);
      if (set.size === 0) this.expiring.delete(k);
    }
  }

  async incrementCounter(key: string, by: number, ttlMs: number): Promise<number> {
    const now = Date.now();
    this.sweepExpired(now);
    let c = this.counters.get(key);
    if (!c || c.expires <= now) this.counters.set(key, (c = { value: 0, expires: now + ttlMs }));
    c.value += by;
    return c.value;
  }

  async getCounter(key: string): Promise<number> {
    const c = this.counters.get(key);
    if (!c || c.expires <= Date.now()) return 0;
    return c.value;
  }

  async registerNode(info: NodeInfo, ttlSeconds: number): Promise<void> {
    this.nodes.set(info.nodeId, { info: clone(info), expires: Date.now() + ttlSeconds * 1000 });
  }

  async listNodes(): Promise<NodeInfo[]> {
    const now = Date.now();
    return [...this.nodes.values()].filter((n) => n.expires > now).map((n) => clone(n.info));
  }

  async removeNode(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
  }
}
