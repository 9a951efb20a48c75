import type {
  AddMemberResult,
  Invitation,
  MemberRecord,
  ModerationLogEntry,
  Restriction,
  RoomRecord,
  RoomStore,
} from '../../interfaces';
import {
  decodeMember,
  decodeRestriction,
  encodeMember,
  encodeRestriction,
  restrictionField,
  roomFromHash,
  roomToHashArgs,
} from './redis-codec';
import { count } from './redis-core';
import { RedisPresence } from './redis-presence';
import {
  ADD_MEMBER,
  APPEND_MODLOG,
  CREATE_ROOM,
  DELETE_ROOM,
  GET_RESTRICTION,
  HSET_IF_ROOM,
  LIST_RESTRICTIONS,
  PRUNE_USER_ROOMS,
  RESERVE_USER_ROOM,
  SET_MEMBER_ROLE,
  UPDATE_ROOM,
} from './scripts/room-scripts';

/** A user-index entry this old whose room does not list the user is a leftover of a failed step. */
const STALE_RESERVATION_MS = 30_000;

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The RoomStore of the Redis backend: rooms, members, restrictions,
 * invitations and the moderation log, all keys of one room on one hash tag
 * `{r:<roomId>}` (see redis-keys.ts), next to the user's room index
 * `{u:<userId>}` and the room index `{rooms}`.
 *
 * Operations spanning a room and a user (or the room index) cannot be one
 * script in a cluster, because those keys live on different slots. They are
 * ordered single-slot steps, chosen so that a failure half-way leaves at worst
 * a stale entry in an index, never a member missing from the room:
 * - addMember: (1) reserve the room in the user's index, checking
 *   `maxRoomsPerUser` there (atomic per user: concurrent joins cannot exceed
 *   it); (2) add to the room, checking `maxMembers` (atomic per room). If the
 *   room refuses (`no_room` / `full`), the reservation is undone. A
 *   reservation stranded by a crash or an outage between the steps is pruned
 *   once it is older than 30 s and the room does not list the user (checked
 *   when the user hits the limit).
 * - createRoom: (1) create the room with its owner (refuses a duplicate id);
 *   (2) add it to the owner's index and to the room index; if (2) fails,
 *   (1) is undone.
 * - removeMember / deleteRoom: the room first (the source of truth), then the
 *   indexes. `listRooms` drops index entries whose room is gone.
 */
export abstract class RedisRooms extends RedisPresence implements RoomStore {
  // ------------------------------------------------------------ rooms

  async createRoom(room: RoomRecord, owner: MemberRecord): Promise<void> {
    const created = await this.run(CREATE_ROOM, this.keys.roomKeyList(room.id), [
      owner.userId,
      encodeMember(owner),
      ...roomToHashArgs(room),
    ]);
    if (created !== 1) throw new Error(`room ${room.id} already exists`);
    // Other slots: the owner's room index and the room index. Undo the room if they fail.
    try {
      await Promise.all([
        this.run(RESERVE_USER_ROOM, [this.keys.userRooms(owner.userId)], [room.id, '']),
        this.exec((c) => c.sadd(this.keys.roomIndex(), room.id)),
      ]);
    } catch (err) {
      await this.undoCreateRoom(room.id, owner.userId);
      throw err;
    }
  }

  private async undoCreateRoom(roomId: string, ownerId: string): Promise<void> {
    try {
      await this.run(DELETE_ROOM, this.keys.roomKeyList(roomId), []);
      await Promise.all([
        this.exec((c) => c.zrem(this.keys.userRooms(ownerId), roomId)),
        this.exec((c) => c.srem(this.keys.roomIndex(), roomId)),
      ]);
    } catch (err) {
      // The original failure is what the caller gets; this one is reported.
      this.onError(err);
    }
  }

  async getRoom(roomId: string): Promise<RoomRecord | null> {
    const hash = await this.exec((c) => c.hgetall(this.keys.room(roomId).room));
    return roomFromHash(hash);
  }

  async updateRoom(roomId: string, patch: Partial<Omit<RoomRecord, 'id'>>): Promise<RoomRecord | null> {
    const { id: _id, ...fields } = patch as Partial<RoomRecord>;
    const res = await this.run(UPDATE_ROOM, [this.keys.room(roomId).room], roomToHashArgs(fields));
    return Array.isArray(res) ? roomFromHash(res as string[]) : null;
  }

  async deleteRoom(roomId: string): Promise<boolean> {
    const res = (await this.run(DELETE_ROOM, this.keys.roomKeyList(roomId), [])) as [number, ...string[]];
    const [existed, ...members] = res;
    await Promise.all([
      ...members.map((userId) => this.exec((c) => c.zrem(this.keys.userRooms(userId), roomId))),
      this.exec((c) => c.srem(this.keys.roomIndex(), roomId)),
    ]);
    return existed === 1;
  }

  async listRooms(): Promise<RoomRecord[]> {
    const ids = await this.exec((c) => c.smembers(this.keys.roomIndex()));
    const rooms = await Promise.all(ids.map((id) => this.getRoom(id)));
    const gone = ids.filter((_, i) => rooms[i] === null);
    if (gone.length > 0) await this.exec((c) => c.srem(this.keys.roomIndex(), ...gone));
    return rooms
      .filter((r): r is RoomRecord => r !== null)
      .sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.id, b.id));
  }

  async countRooms(): Promise<number> {
    return this.exec((c) => c.scard(this.keys.roomIndex()));
  }

  // ------------------------------------------------------------ membership

  async addMember(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
  ): Promise<AddMemberResult> {
    return this.addMemberOnce(roomId, member, limits, false);
  }

  private async addMemberOnce(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
    repaired: boolean,
  ): Promise<AddMemberResult> {
    const k = this.keys.room(roomId);
    const userKey = this.keys.userRooms(member.userId);
    const limit = limits.maxRoomsPerUser === undefined ? '' : count(limits.maxRoomsPerUser);
    // Step 1, the user's slot: reserve (checks maxRoomsPerUser atomically).
    const reserved = (await this.run(RESERVE_USER_ROOM, [userKey], [roomId, limit])) as string;
    if (reserved === 'user_limit') {
      // The local backend's order of answers: no_room, exists, full, then user_limit.
      const pre = (await this.run(ADD_MEMBER, [k.room, k.members], [member.userId, '', '1'])) as string;
      if (pre !== 'ok') return pre as AddMemberResult;
      if (!repaired && (await this.pruneStaleUserRooms(member.userId)) > 0) {
        return this.addMemberOnce(roomId, member, limits, true);
      }
      return 'user_limit';
    }
    // Step 2, the room's slot: add (checks maxMembers atomically). If this step
    // fails without an answer, the reservation stays (it may have succeeded);
    // pruneStaleUserRooms cleans it up later if it did not.
    const result = (await this.run(
      ADD_MEMBER,
      [k.room, k.members],
      [member.userId, encodeMember(member), '0'],
    )) as AddMemberResult;
    // Compensation: the room refused, so the reservation made in step 1 goes.
    if (reserved === 'reserved' && (result === 'no_room' || result === 'full')) {
      await this.exec((c) => c.zrem(userKey, roomId));
    }
    return result;
  }

  /** Drop user-index entries older than STALE_RESERVATION_MS whose room does not list the user. */
  private async pruneStaleUserRooms(userId: string): Promise<number> {
    const userKey = this.keys.userRooms(userId);
    const ids = await this.exec((c) => c.zrange(userKey, 0, '-1'));
    const present = await Promise.all(
      ids.map((id) => this.exec((c) => c.hexists(this.keys.room(id).members, userId))),
    );
    const stale = ids.filter((_, i) => present[i] === 0);
    if (stale.length === 0) return 0;
    return (await this.run(PRUNE_USER_ROOMS, [userKey], [STALE_RESERVATION_MS, ...stale])) as number;
  }

  async removeMember(roomId: string, userId: string): Promise<boolean> {
    const removed = await this.exec((c) => c.hdel(this.keys.room(roomId).members, userId));
    if (removed === 0) return false;
    await this.exec((c) => c.zrem(this.keys.userRooms(userId), roomId));
    return true;
  }

  async getMember(roomId: string, userId: string): Promise<MemberRecord | null> {
    const v = await this.exec((c) => c.hget(this.keys.room(roomId).members, userId));
    return v === null ? null : decodeMember(v);
  }

  async setMemberRole(roomId: string, userId: string, role: MemberRecord['role']): Promise<boolean> {
    return (await this.run(SET_MEMBER_ROLE, [this.keys.room(roomId).members], [userId, role])) === 1;
  }

  async listMembers(roomId: string): Promise<MemberRecord[]> {
    const values = await this.exec((c) => c.hvals(this.keys.room(roomId).members));
    return values
      .map(decodeMember)
      .sort((a, b) => compare(a.joinedAt, b.joinedAt) || compare(a.userId, b.userId));
  }

  async countMembers(roomId: string): Promise<number> {
    return this.exec((c) => c.hlen(this.keys.room(roomId).members));
  }

  async userRooms(userId: string): Promise<string[]> {
    return this.exec((c) => c.zrange(this.keys.userRooms(userId), 0, '-1'));
  }

  // ------------------------------------------------------------ bans and mutes

  async setRestriction(roomId: string, restriction: Restriction): Promise<void> {
    const k = this.keys.room(roomId);
    await this.run(
      HSET_IF_ROOM,
      [k.room, k.restrictions],
      [restrictionField(restriction.kind, restriction.userId), encodeRestriction(restriction)],
    );
  }

  async getRestriction(
    roomId: string,
    kind: Restriction['kind'],
    userId: string,
  ): Promise<Restriction | null> {
    const v = await this.run(
      GET_RESTRICTION,
      [this.keys.room(roomId).restrictions],
      [restrictionField(kind, userId), Date.now()],
    );
    return typeof v === 'string' ? decodeRestriction(v) : null;
  }

  async clearRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<boolean> {
    const n = await this.exec((c) =>
      c.hdel(this.keys.room(roomId).restrictions, restrictionField(kind, userId)),
    );
    return n > 0;
  }

  async listRestrictions(roomId: string): Promise<Restriction[]> {
    const values = (await this.run(
      LIST_RESTRICTIONS,
      [this.keys.room(roomId).restrictions],
      [Date.now()],
    )) as string[];
    return values.map(decodeRestriction);
  }

  // ------------------------------------------------------------ invitations

  async addInvitation(roomId: string, invitation: Invitation): Promise<void> {
    const k = this.keys.room(roomId);
    await this.run(HSET_IF_ROOM, [k.room, k.invitations], [invitation.userId, JSON.stringify(invitation)]);
  }

  async getInvitation(roomId: string, userId: string): Promise<Invitation | null> {
    const v = await this.exec((c) => c.hget(this.keys.room(roomId).invitations, userId));
    return v === null ? null : (JSON.parse(v) as Invitation);
  }

  async removeInvitation(roomId: string, userId: string): Promise<boolean> {
    return (await this.exec((c) => c.hdel(this.keys.room(roomId).invitations, userId))) > 0;
  }

  // ------------------------------------------------------------ moderation log

  async appendModerationLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): Promise<void> {
    const k = this.keys.room(roomId);
    await this.run(APPEND_MODLOG, [k.room, k.modlog], [JSON.stringify(entry), count(maxEntries)]);
  }

  async getModerationLog(roomId: string, limit: number): Promise<ModerationLogEntry[]> {
    const n = count(limit);
    if (n === 0) return [];
    const values = await this.exec((c) => c.lrange(this.keys.room(roomId).modlog, -n, -1));
    return values.map((v) => JSON.parse(v) as ModerationLogEntry);
  }
}
