import { StreamingError } from '../../protocol/streaming-error';
import { encodeMessageEnvelope } from '../../protocol/wire';
import { applyMutation, selectHistory } from '../backend-helpers';
import { LocalPersistence } from './local-persistence.interface';
import {
  AddMemberResult,
  EXPIRED_MEMBER_GRACE_MS,
  HistoryQuery,
  Invitation,
  ModerationLogEntry,
  MemberRecord,
  MessageDraft,
  MessageMutation,
  MutationResult,
  NodeInfo,
  PresenceRecord,
  Restriction,
  RoomRecord,
  StoredMessage,
  StreamingBackend,
  TopicHandler,
} from '../../interfaces';

interface LocalRoom {
  record: RoomRecord;
  members: Map<string, MemberRecord>;
  restrictions: Map<string, Restriction>;
  invitations: Map<string, Invitation>;
  modLog: ModerationLogEntry[];
  history: StoredMessage[];
  byId: Map<string, StoredMessage>;
  lastSeq: number;
}

const clone = <T>(v: T): T => structuredClone(v);

/**
 * The in-process backend (the default): all state in this process's memory,
 * pub/sub delivered synchronously. Nothing is shared with other processes.
 * With a {@link LocalPersistence} (e.g. SQLite) rooms, members, bans and
 * history are written through and reloaded after a restart.
 */
export class LocalBackend implements StreamingBackend {
  readonly kind = 'local';
  readonly distributed = false;

  private readonly handlers = new Map<string, TopicHandler>();
  private readonly rooms = new Map<string, LocalRoom>();
  private readonly userRoomIndex = new Map<string, Set<string>>();
  private readonly presence = new Map<string, { record: PresenceRecord; expires: number }>();
  private readonly counters = new Map<string, { value: number; expires: number }>();
  /** userId -> nodeId -> open connections. */
  private readonly userConns = new Map<string, Map<string, number>>();
  /** key -> member -> expiry (epoch ms). */
  private readonly expiring = new Map<string, Map<string, number>>();
  private readonly nodes = new Map<string, { info: NodeInfo; expires: number }>();
  private closed = false;
  private loaded = false;

  constructor(private readonly persistence?: LocalPersistence) {}

  async connect(): Promise<void> {
    this.closed = false;
    if (this.persistence && !this.loaded) {
      this.loaded = true;
      for (const p of this.persistence.load()) {
        const room: LocalRoom = {
          record: p.record,
          members: new Map(p.members.map((m) => [m.userId, m])),
          restrictions: new Map(p.restrictions.map((r) => [this.restrictionKey(r.kind, r.userId), r])),
          invitations: new Map(p.invitations.map((i) => [i.userId, i])),
          modLog: p.modLog,
          history: p.history,
          byId: new Map(p.history.map((m) => [m.id, m])),
          lastSeq: p.lastSeq,
        };
        this.rooms.set(p.record.id, room);
        for (const userId of room.members.keys()) this.indexUser(userId, p.record.id, true);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    this.persistence?.close();
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('local backend is closed');
  }

  async publish(topic: string, payload: string): Promise<void> {
    this.deliver(topic, payload);
  }

  private deliver(topic: string, payload: string): void {
    const h = this.handlers.get(topic);
    if (h) h(payload, topic);
  }

  async subscribe(topic: string, handler: TopicHandler): Promise<void> {
    this.handlers.set(topic, handler);
  }

  async unsubscribe(topic: string): Promise<void> {
    this.handlers.delete(topic);
  }

  private room(roomId: string): LocalRoom | undefined {
    return this.rooms.get(roomId);
  }

  private indexUser(userId: string, roomId: string, add: boolean): void {
    let set = this.userRoomIndex.get(userId);
    if (add) {
      if (!set) this.userRoomIndex.set(userId, (set = new Set()));
      set.add(roomId);
    } else if (set) {
      set.delete(roomId);
      if (set.size === 0) this.userRoomIndex.delete(userId);
    }
  }

  async createRoom(room: RoomRecord, owner: MemberRecord): Promise<void> {
    if (this.rooms.has(room.id)) throw new Error(`room ${room.id} already exists`);
    this.rooms.set(room.id, {
      record: clone(room),
      members: new Map([[owner.userId, clone(owner)]]),
      restrictions: new Map(),
      invitations: new Map(),
      modLog: [],
      history: [],
      byId: new Map(),
      lastSeq: 0,
    });
    this.indexUser(owner.userId, room.id, true);
    this.persistence?.saveRoom(room);
    this.persistence?.saveMember(room.id, owner);
  }

  async getRoom(roomId: string): Promise<RoomRecord | null> {
    const r = this.room(roomId);
    return r ? clone(r.record) : null;
  }

  async updateRoom(roomId: string, patch: Partial<Omit<RoomRecord, 'id'>>): Promise<RoomRecord | null> {
    const r = this.room(roomId);
    if (!r) return null;
    r.record = { ...r.record, ...clone(patch), id: r.record.id };
    this.persistence?.saveRoom(r.record);
    return clone(r.record);
  }

  async deleteRoom(roomId: string): Promise<boolean> {
    const r = this.room(roomId);
    if (!r) return false;
    for (const userId of r.members.keys()) this.indexUser(userId, roomId, false);
    this.rooms.delete(roomId);
    this.persistence?.deleteRoom(roomId);
    return true;
  }

  async listRooms(): Promise<RoomRecord[]> {
    return [...this.rooms.values()].map((r) => clone(r.record));
  }

  async countRooms(): Promise<number> {
    return this.rooms.size;
  }

  async addMember(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
  ): Promise<AddMemberResult> {
    const r = this.room(roomId);
    if (!r) return 'no_room';
    if (r.members.has(member.userId)) return 'exists';
    if (r.record.maxMembers !== null && r.members.size >= r.record.maxMembers) return 'full';
    const owned = this.userRoomIndex.get(member.userId)?.size ?? 0;
    if (limits.maxRoomsPerUser !== undefined && owned >= limits.maxRoomsPerUser) return 'user_limit';
    r.members.set(member.userId, clone(member));
    this.indexUser(member.userId, roomId, true);
    this.persistence?.saveMember(roomId, member);
    return 'added';
  }

  async removeMember(roomId: string, userId: string): Promise<boolean> {
    const r = this.room(roomId);
    if (!r || !r.members.delete(userId)) return false;
    this.indexUser(userId, roomId, false);
    this.persistence?.deleteMember(roomId, userId);
    return true;
  }

  async getMember(roomId: string, userId: string): Promise<MemberRecord | null> {
    const m = this.room(roomId)?.members.get(userId);
    return m ? clone(m) : null;
  }

  async setMemberRole(roomId: string, userId: string, role: MemberRecord['role']): Promise<boolean> {
    const m = this.room(roomId)?.members.get(userId);
    if (!m) return false;
    m.role = role;
    this.persistence?.saveMember(roomId, m);
    return true;
  }

  async listMembers(roomId: string): Promise<MemberRecord[]> {
    return [...(this.room(roomId)?.members.values() ?? [])].map(clone);
  }

  async countMembers(roomId: string): Promise<number> {
    return this.room(roomId)?.members.size ?? 0;
  }

  async userRooms(userId: string): Promise<string[]> {
    return [...(this.userRoomIndex.get(userId) ?? [])];
  }

  private restrictionKey = (kind: string, userId: string): string => `${kind}:${userId}`;

  async setRestriction(roomId: string, restriction: Restriction): Promise<void> {
    const r = this.room(roomId);
    if (!r) return;
    r.restrictions.set(this.restrictionKey(restriction.kind, restriction.userId), clone(restriction));
    this.persistence?.saveRestriction(roomId, restriction);
  }

  async getRestriction(
    roomId: string,
    kind: Restriction['kind'],
    userId: string,
  ): Promise<Restriction | null> {
    const r = this.room(roomId);
    const key = this.restrictionKey(kind, userId);
    const found = r?.restrictions.get(key);
    if (!found) return null;
    if (found.until !== null && found.until <= Date.now()) {
      r!.restrictions.delete(key);
      this.persistence?.deleteRestriction(roomId, kind, userId);
      return null;
    }
    return clone(found);
  }

  async clearRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<boolean> {
    const removed = this.room(roomId)?.restrictions.delete(this.restrictionKey(kind, userId)) ?? false;
    if (removed) this.persistence?.deleteRestriction(roomId, kind, userId);
    return removed;
  }

  async listRestrictions(roomId: string): Promise<Restriction[]> {
    const now = Date.now();
    return [...(this.room(roomId)?.restrictions.values() ?? [])]
      .filter((x) => x.until === null || x.until > now)
      .map(clone);
  }

  async addInvitation(roomId: string, invitation: Invitation): Promise<void> {
    const r = this.room(roomId);
    if (!r) return;
    r.invitations.set(invitation.userId, clone(invitation));
    this.persistence?.saveInvitation(roomId, invitation);
  }

  async getInvitation(roomId: string, userId: string): Promise<Invitation | null> {
    const inv = this.room(roomId)?.invitations.get(userId);
    return inv ? clone(inv) : null;
  }

  async removeInvitation(roomId: string, userId: string): Promise<boolean> {
    const removed = this.room(roomId)?.invitations.delete(userId) ?? false;
    if (removed) this.persistence?.deleteInvitation(roomId, userId);
    return removed;
  }

  async appendModerationLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): Promise<void> {
    const r = this.room(roomId);
    if (!r) return;
    r.modLog.push(clone(entry));
    if (r.modLog.length > maxEntries) r.modLog.splice(0, r.modLog.length - maxEntries);
    this.persistence?.appendLog(roomId, entry, maxEntries);
  }

  async getModerationLog(roomId: string, limit: number): Promise<ModerationLogEntry[]> {
    if (limit <= 0) return [];
    return (this.room(roomId)?.modLog.slice(-limit) ?? []).map(clone);
  }

  async appendMessage(
    roomId: string,
    draft: MessageDraft,
    options: { maxHistory: number; publishTopic?: string },
  ): Promise<StoredMessage> {
    const r = this.room(roomId);
    if (!r) throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
    const stored: StoredMessage = { ...clone(draft), seq: r.lastSeq + 1 };
    const excess = r.history.length + 1 - options.maxHistory;
    const dropped = excess > 0 ? r.history.slice(0, excess).map((m) => m.id) : [];
    if (excess > r.history.length) dropped.push(stored.id);
    // On disk first: a write that fails changes nothing (no message, no seq given out).
    this.persistence?.appendMessage(stored, dropped);
    r.lastSeq = stored.seq;
    r.history.push(stored);
    r.byId.set(stored.id, stored);
    if (excess > 0) this.dropOldest(r, excess);
    // Same synchronous step as the seq assignment: subscribers see seq order.
    if (options.publishTopic) this.deliver(options.publishTopic, encodeMessageEnvelope(stored));
    return clone(stored);
  }

  /** Drop the `n` oldest messages from memory; returns their ids. */
  private dropOldest(r: LocalRoom, n: number): string[] {
    const ids: string[] = [];
    for (const m of r.history.splice(0, n)) {
      r.byId.delete(m.id);
      ids.push(m.id);
    }
    return ids;
  }

  async getHistory(roomId: string, query: HistoryQuery): Promise<StoredMessage[]> {
    return selectHistory(this.room(roomId)?.history ?? [], query).map(clone);
  }

  async getMessage(roomId: string, messageId: string): Promise<StoredMessage | null> {
    const m = this.room(roomId)?.byId.get(messageId);
    return m ? clone(m) : null;
  }

  async updateMessage(
    roomId: string,
    messageId: string,
    mutation: MessageMutation,
  ): Promise<MutationResult | null> {
    const m = this.room(roomId)?.byId.get(messageId);
    if (!m) return null;
    const next = clone(m);
    const applied = applyMutation(next, mutation);
    if (applied === 'limited') return { message: next, changed: false, limited: true };
    if (!applied) return { message: next, changed: false };
    this.persistence?.saveMessage(next); // on disk first, then in memory
    Object.assign(m, clone(next));
    return { message: next, changed: true };
  }

  async latestSeq(roomId: string): Promise<number> {
    return this.room(roomId)?.lastSeq ?? 0;
  }

  async oldestSeq(roomId: string): Promise<number> {
    const r = this.room(roomId);
    if (!r) return 1;
    return r.history.length > 0 ? r.history[0].seq : r.lastSeq + 1;
  }

  async trimHistory(roomId: string, limits: { maxCount: number; olderThan?: number }): Promise<number> {
    const r = this.room(roomId);
    if (!r) return 0;
    let n = Math.max(0, r.history.length - limits.maxCount);
    if (limits.olderThan !== undefined) {
      while (n < r.history.length && Date.parse(r.history[n].timestamp) < limits.olderThan) n++;
    }
    const ids = this.dropOldest(r, n);
    if (ids.length > 0) this.persistence?.deleteMessages(roomId, ids);
    return n;
  }

  async setPresence(record: PresenceRecord, ttlSeconds: number): Promise<void> {
    this.presence.set(record.userId, { record: clone(record), expires: Date.now() + ttlSeconds * 1000 });
  }

  async getPresence(userIds: string[]): Promise<PresenceRecord[]> {
    const now = Date.now();
    const out: PresenceRecord[] = [];
    for (const id of userIds) {
      const p = this.presence.get(id);
      if (!p) continue;
      if (p.expires <= now) this.presence.delete(id);
      else out.push(clone(p.record));
    }
    return out;
  }

  async removePresence(userId: string): Promise<void> {
    this.presence.delete(userId);
  }

  private readonly userNodeIndex = new Map<string, Set<string>>();
  private readonly nodeUserIndex = new Map<string, Set<string>>();

  private static link(index: Map<string, Set<string>>, key: string, value: string, add: boolean): void {
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
    LocalBackend.link(this.userNodeIndex, userId, nodeId, true);
    LocalBackend.link(this.nodeUserIndex, nodeId, userId, true);
  }

  async removeUserNode(userId: string, nodeId: string): Promise<void> {
    LocalBackend.link(this.userNodeIndex, userId, nodeId, false);
    LocalBackend.link(this.nodeUserIndex, nodeId, userId, false);
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

  private lastSweep = Date.now();

  /** Drop expired counters and presence records now and then, so the maps stay bounded by live keys. */
  private sweepExpired(now: number): void {
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
