import {
  AddMemberResult,
  Invitation,
  MemberRecord,
  ModerationLogEntry,
  Restriction,
  RoomRecord,
  RoomStore,
  StoredMessage,
} from '../../interfaces';
import { LocalPersistence } from './local-persistence.interface';
import { LocalPresence, clone } from './local-presence';

/** A room and everything of it the local backend keeps, its history included. */
export interface LocalRoom {
  record: RoomRecord;
  members: Map<string, MemberRecord>;
  restrictions: Map<string, Restriction>;
  invitations: Map<string, Invitation>;
  modLog: ModerationLogEntry[];
  history: StoredMessage[];
  byId: Map<string, StoredMessage>;
  lastSeq: number;
  /** Read state (local-read-state.ts): user id -> highest seq read; absent until someone marks. */
  reads?: Map<string, number>;
}

/**
 * The local backend's room store: rooms with their members, bans and mutes,
 * invitations and moderation log, in memory, written through to the
 * {@link LocalPersistence} when there is one (on disk first, then memory).
 */
export class LocalRooms extends LocalPresence implements RoomStore {
  protected readonly rooms = new Map<string, LocalRoom>();
  protected readonly userRoomIndex = new Map<string, Set<string>>();

  constructor(protected readonly persistence?: LocalPersistence) {
    super();
  }

  protected room(roomId: string): LocalRoom | undefined {
    return this.rooms.get(roomId);
  }

  protected indexUser(userId: string, roomId: string, add: boolean): void {
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

  protected restrictionKey = (kind: string, userId: string): string => `${kind}:${userId}`;

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
}
