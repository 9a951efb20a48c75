import {
  AddMemberResult,
  Invitation,
  MemberRecord,
  ModerationLogEntry,
  Restriction,
  RoomRecord,
  RoomStore,
} from '../../interfaces';
import { LocalPersistence } from './local-persistence.interface';
import { LocalPresence, clone, copyFlat, copyRoom } from './local-presence';
import { DEFAULT_CACHE_ENTRIES, LocalRoom, RoomCache, roomEntry } from './room-cache';

export type { LocalRoom } from './room-cache';

/** Options of the local backend. */
export interface LocalBackendOptions {
  /**
   * With a store: at most this many entries (rooms, members, restrictions,
   * invitations, messages: one each) are held in memory, the least recently
   * used rooms dropped first. Default {@link DEFAULT_CACHE_ENTRIES}.
   */
  cacheEntries?: number;
}

/**
 * The local backend's room store: rooms with their members, bans and mutes,
 * invitations and moderation log. Without a {@link LocalPersistence} they live
 * in this process's memory (tests, demos). With one, the store is the source
 * of truth: every change is written there first, and memory holds a bounded
 * cache of recently used rooms ({@link RoomCache}), filled on demand.
 */
export class LocalRooms extends LocalPresence implements RoomStore {
  protected readonly rooms: RoomCache;
  /** Memory mode only (a store answers from its index on members.user_id). */
  protected readonly userRoomIndex = new Map<string, Set<string>>();

  constructor(
    protected readonly persistence?: LocalPersistence,
    options: LocalBackendOptions = {},
  ) {
    super();
    this.rooms = new RoomCache(persistence ? (options.cacheEntries ?? DEFAULT_CACHE_ENTRIES) : Infinity);
  }

  /** The room (now most recently used), read from the store when it is not held. */
  protected room(roomId: string): LocalRoom | undefined {
    const held = this.rooms.use(roomId);
    if (held || !this.persistence) return held;
    const p = this.persistence.getRoom(roomId);
    if (!p) return undefined;
    const r = roomEntry(p.record, p.lastSeq, p.oldestSeq);
    this.rooms.add(r);
    return r;
  }

  /** The room if held, without loading it or counting it as used (reads that should not fill the cache). */
  protected held(roomId: string): LocalRoom | undefined {
    return this.persistence ? this.rooms.peek(roomId) : this.rooms.use(roomId);
  }

  protected members(r: LocalRoom): Map<string, MemberRecord> {
    if (r.members) return r.members;
    r.members = new Map(this.persistence?.listMembers(r.record.id).map((m) => [m.userId, m]));
    this.rooms.fit(r);
    return r.members;
  }

  protected restrictions(r: LocalRoom): Map<string, Restriction> {
    if (r.restrictions) return r.restrictions;
    const all = this.persistence?.listRestrictions(r.record.id) ?? [];
    r.restrictions = new Map(all.map((x) => [this.restrictionKey(x.kind, x.userId), x]));
    this.rooms.fit(r);
    return r.restrictions;
  }

  protected invitations(r: LocalRoom): Map<string, Invitation> {
    if (r.invitations) return r.invitations;
    r.invitations = new Map(this.persistence?.listInvitations(r.record.id).map((i) => [i.userId, i]));
    this.rooms.fit(r);
    return r.invitations;
  }

  protected indexUser(userId: string, roomId: string, add: boolean): void {
    if (this.persistence) return;
    LocalPresence.link(this.userRoomIndex, userId, roomId, add);
  }

  async createRoom(room: RoomRecord, owner: MemberRecord): Promise<void> {
    if (this.room(room.id)) throw new Error(`room ${room.id} already exists`);
    this.persistence?.createRoom(room, owner);
    const r = roomEntry(clone(room), 0, 1);
    r.members = new Map([[owner.userId, copyFlat(owner)]]);
    r.restrictions = new Map();
    r.invitations = new Map();
    if (!this.persistence) r.modLog = [];
    this.rooms.add(r);
    this.indexUser(owner.userId, room.id, true);
  }

  async getRoom(roomId: string): Promise<RoomRecord | null> {
    const r = this.room(roomId);
    return r ? copyRoom(r.record) : null;
  }

  async updateRoom(roomId: string, patch: Partial<Omit<RoomRecord, 'id'>>): Promise<RoomRecord | null> {
    const r = this.room(roomId);
    if (!r) return null;
    const next = { ...r.record, ...clone(patch), id: r.record.id };
    this.persistence?.saveRoom(next);
    r.record = next;
    return clone(next);
  }

  async deleteRoom(roomId: string): Promise<boolean> {
    const r = this.room(roomId);
    if (!r) return false;
    this.persistence?.deleteRoom(roomId);
    if (!this.persistence) for (const userId of this.members(r).keys()) this.indexUser(userId, roomId, false);
    this.rooms.remove(roomId);
    return true;
  }

  async listRooms(): Promise<RoomRecord[]> {
    if (this.persistence) return this.persistence.listRooms();
    return [...this.rooms.values()].map((r) => clone(r.record));
  }

  async countRooms(): Promise<number> {
    return this.persistence ? this.persistence.countRooms() : this.rooms.size;
  }

  async addMember(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
  ): Promise<AddMemberResult> {
    const r = this.room(roomId);
    if (!r) return 'no_room';
    const members = this.members(r);
    if (members.has(member.userId)) return 'exists';
    if (r.record.maxMembers !== null && members.size >= r.record.maxMembers) return 'full';
    if (limits.maxRoomsPerUser !== undefined) {
      const owned = this.persistence
        ? this.persistence.userRooms(member.userId).length
        : (this.userRoomIndex.get(member.userId)?.size ?? 0);
      if (owned >= limits.maxRoomsPerUser) return 'user_limit';
    }
    this.persistence?.saveMember(roomId, member);
    members.set(member.userId, copyFlat(member));
    this.indexUser(member.userId, roomId, true);
    this.rooms.fit(r);
    return 'added';
  }

  async removeMember(roomId: string, userId: string): Promise<boolean> {
    const r = this.room(roomId);
    if (!r || !this.members(r).has(userId)) return false;
    this.persistence?.deleteMember(roomId, userId);
    this.members(r).delete(userId);
    this.indexUser(userId, roomId, false);
    this.rooms.fit(r);
    return true;
  }

  async getMember(roomId: string, userId: string): Promise<MemberRecord | null> {
    const r = this.room(roomId);
    const m = r && this.members(r).get(userId);
    return m ? copyFlat(m) : null;
  }

  async setMemberRole(roomId: string, userId: string, role: MemberRecord['role']): Promise<boolean> {
    const r = this.room(roomId);
    const m = r && this.members(r).get(userId);
    if (!m) return false;
    this.persistence?.saveMember(roomId, { ...m, role });
    m.role = role;
    return true;
  }

  async listMembers(roomId: string): Promise<MemberRecord[]> {
    const r = this.room(roomId);
    return r ? [...this.members(r).values()].map(copyFlat) : [];
  }

  async countMembers(roomId: string): Promise<number> {
    // A store counts the rooms it does not hold itself (room lists count every room).
    const held = this.held(roomId);
    if (held?.members) return held.members.size;
    return this.persistence?.countMembers(roomId) ?? 0;
  }

  async userRooms(userId: string): Promise<string[]> {
    if (this.persistence) return this.persistence.userRooms(userId);
    return [...(this.userRoomIndex.get(userId) ?? [])];
  }

  protected restrictionKey = (kind: string, userId: string): string => `${kind}:${userId}`;

  async setRestriction(roomId: string, restriction: Restriction): Promise<void> {
    const r = this.room(roomId);
    if (!r) return;
    const all = this.restrictions(r);
    this.persistence?.saveRestriction(roomId, restriction);
    all.set(this.restrictionKey(restriction.kind, restriction.userId), clone(restriction));
    this.rooms.fit(r);
  }

  async getRestriction(
    roomId: string,
    kind: Restriction['kind'],
    userId: string,
  ): Promise<Restriction | null> {
    const r = this.room(roomId);
    if (!r) return null;
    const all = this.restrictions(r);
    const key = this.restrictionKey(kind, userId);
    const found = all.get(key);
    if (!found) return null;
    if (found.until !== null && found.until <= Date.now()) {
      this.persistence?.deleteRestriction(roomId, kind, userId);
      all.delete(key);
      this.rooms.fit(r);
      return null;
    }
    return clone(found);
  }

  async clearRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<boolean> {
    const r = this.room(roomId);
    const key = this.restrictionKey(kind, userId);
    if (!r || !this.restrictions(r).has(key)) return false;
    this.persistence?.deleteRestriction(roomId, kind, userId);
    this.restrictions(r).delete(key);
    this.rooms.fit(r);
    return true;
  }

  async listRestrictions(roomId: string): Promise<Restriction[]> {
    const now = Date.now();
    // A store lists the rooms it does not hold itself (start-up re-arms timed ones of every room).
    const held = this.held(roomId);
    const all = held
      ? [...this.restrictions(held).values()]
      : (this.persistence?.listRestrictions(roomId) ?? []);
    return all.filter((x) => x.until === null || x.until > now).map(clone);
  }

  async addInvitation(roomId: string, invitation: Invitation): Promise<void> {
    const r = this.room(roomId);
    if (!r) return;
    const all = this.invitations(r);
    this.persistence?.saveInvitation(roomId, invitation);
    all.set(invitation.userId, clone(invitation));
    this.rooms.fit(r);
  }

  async getInvitation(roomId: string, userId: string): Promise<Invitation | null> {
    const r = this.room(roomId);
    const inv = r && this.invitations(r).get(userId);
    return inv ? clone(inv) : null;
  }

  async removeInvitation(roomId: string, userId: string): Promise<boolean> {
    const r = this.room(roomId);
    if (!r || !this.invitations(r).has(userId)) return false;
    this.persistence?.deleteInvitation(roomId, userId);
    this.invitations(r).delete(userId);
    this.rooms.fit(r);
    return true;
  }

  async appendModerationLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): Promise<void> {
    const r = this.room(roomId);
    if (!r) return;
    if (this.persistence) return this.persistence.appendLog(roomId, entry, maxEntries);
    const log = (r.modLog ??= []);
    log.push(clone(entry));
    if (log.length > maxEntries) log.splice(0, log.length - maxEntries);
  }

  async getModerationLog(roomId: string, limit: number): Promise<ModerationLogEntry[]> {
    if (limit <= 0) return [];
    if (this.persistence) return this.persistence.moderationLog(roomId, limit);
    return (this.room(roomId)?.modLog?.slice(-limit) ?? []).map(clone);
  }
}
