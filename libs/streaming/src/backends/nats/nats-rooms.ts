import { randomUUID } from 'node:crypto';
import type { AddMemberResult, MemberRecord, RoomRecord } from '../../interfaces';
import { RoomValue, UserRoomsValue, encodeRoomLog, jsonBytes, utf8 } from './nats-codec';
import { DELETE, Session } from './nats-core';
import { BucketId, decodeToken } from './nats-keys';
import { NatsPresence } from './nats-presence';
import { batched, count, isConflict } from './nats-util';

/** A user-index entry this old whose room does not list the user is a leftover of a failed step. */
const STALE_RESERVATION_MS = 30_000;

type MemberValue = MemberRecord;

/**
 * Rooms and memberships of the NATS backend's RoomStore (layer 3, on
 * {@link NatsPresence}); bans, mutes, invitations and the moderation log are
 * added by nats-moderation.ts.
 *
 * Layout:
 * - rooms: room -> { record, incarnation, member count, deletion mark }
 * - members: `r.<room>.<user>` -> membership; `u.<user>` -> the user's rooms
 *
 * Rooms: deleteRoom first marks the room (it reads as absent, joins answer
 * no_room, its id cannot be re-created), then purges its keys and indexes,
 * then removes the mark; a deletion a node gave up half-way is finished by
 * the next deleteRoom, or by createRoom once the mark is 30 s old. Writes of
 * room-scoped keys check the room again after writing and undo themselves if
 * a deletion raced them, so a re-created room starts clean. createRoom also
 * writes the room's first room log entry (seqs, see nats-broker.ts), and
 * deleteRoom purges every room-scoped bucket, those of the layers above
 * included: only key names and codecs are shared, no upper layer's code.
 *
 * Limits: membership counts live in the room value so that `maxMembers` is
 * checked in the same compare-and-swap; the member key is written next. A
 * node dying between the two leaves the count one too high (not repaired).
 * User-index reservations stranded that way are pruned after 30 s, as in the
 * Redis backend.
 */
export abstract class NatsRooms extends NatsPresence {
  // ------------------------------------------------------------ rooms

  /** The room value when the room exists and is not being deleted. */
  protected async liveRoom(s: Session, roomId: string): Promise<RoomValue | null> {
    const v = await this.value<RoomValue>(s.kv.rooms, this.names.room(roomId));
    return v && !v.d ? v : null;
  }

  async createRoom(room: RoomRecord, owner: MemberRecord): Promise<void> {
    await this.exec(async (s) => {
      const inc = randomUUID();
      const value: RoomValue = { r: room, inc, n: 1 };
      const key = this.names.room(room.id);
      const create = (): Promise<'created' | 'exists' | { stranded: string }> =>
        this.cas<RoomValue, 'created' | 'exists' | { stranded: string }>(s, 'rooms', key, (cur) => {
          if (!cur) return { result: 'created', next: value };
          // A deletion that a node gave up half-way through: finish it, then create.
          if (cur.d && cur.d <= Date.now() - STALE_RESERVATION_MS) return { result: { stranded: cur.inc } };
          return { result: 'exists' };
        });
      let created = await create();
      if (typeof created === 'object') {
        await this.finishDelete(s, room.id, created.stranded);
        created = await create();
      }
      if (created !== 'created') throw new Error(`room ${room.id} already exists`);
      try {
        await Promise.all([
          s.kv.seqs.put(this.names.roomLog(room.id), utf8(encodeRoomLog({ seq: 0, floor: 1, inc }))),
          s.kv.members.put(this.names.member(room.id, owner.userId), jsonBytes(owner)),
          this.reserveUserRoom(s, owner.userId, room.id, undefined),
        ]);
      } catch (err) {
        await this.undoCreateRoom(s, room.id, owner.userId, inc);
        throw err;
      }
    });
  }

  private async undoCreateRoom(s: Session, roomId: string, ownerId: string, inc: string): Promise<void> {
    try {
      await this.cas<RoomValue, void>(s, 'rooms', this.names.room(roomId), (cur) =>
        cur?.inc === inc ? { result: undefined, next: DELETE } : { result: undefined },
      );
      await Promise.all([
        this.purge(s, 'seqs', this.names.roomLog(roomId)),
        this.purge(s, 'members', this.names.member(roomId, ownerId)),
        this.releaseUserRoom(s, ownerId, roomId),
      ]);
    } catch (err) {
      // The original failure is what the caller gets; this one is reported.
      this.onError(err);
    }
  }

  async getRoom(roomId: string): Promise<RoomRecord | null> {
    return this.exec(async (s) => (await this.liveRoom(s, roomId))?.r ?? null);
  }

  async updateRoom(roomId: string, patch: Partial<Omit<RoomRecord, 'id'>>): Promise<RoomRecord | null> {
    return this.exec((s) =>
      this.cas<RoomValue, RoomRecord | null>(s, 'rooms', this.names.room(roomId), (cur) => {
        if (!cur || cur.d) return { result: null };
        const r: RoomRecord = { ...cur.r };
        for (const [k, v] of Object.entries(patch)) {
          if (k !== 'id' && v !== undefined) (r as unknown as Record<string, unknown>)[k] = v;
        }
        // What a reader gets back is the JSON form.
        const next = JSON.parse(JSON.stringify({ ...cur, r })) as RoomValue;
        return { result: next.r, next };
      }),
    );
  }

  async deleteRoom(roomId: string): Promise<boolean> {
    return this.exec(async (s) => {
      // Phase 1: mark the room as being deleted. From now on it reads as absent,
      // joins answer no_room, and its id cannot be re-created until phase 3.
      const marked = await this.cas<RoomValue, { inc: string; first: boolean } | null>(
        s,
        'rooms',
        this.names.room(roomId),
        (cur) => {
          if (!cur) return { result: null };
          if (cur.d) return { result: { inc: cur.inc, first: false } }; // in progress (or stranded): finish it
          return { result: { inc: cur.inc, first: true }, next: { ...cur, d: Date.now() } };
        },
      );
      if (!marked) return false;
      await this.finishDelete(s, roomId, marked.inc);
      return marked.first;
    });
  }

  /** Phases 2 and 3 of deleteRoom: the room's data and indexes, then the room itself. */
  private async finishDelete(s: Session, roomId: string, inc: string): Promise<void> {
    const members = await this.listKeys(s.kv.members, this.names.membersOf(roomId));
    const users = members.map((k) => decodeToken(k.slice(k.lastIndexOf('.') + 1)));
    await batched(users, (u) => this.releaseUserRoom(s, u, roomId));
    await Promise.all([
      this.purge(s, 'members', this.names.membersOf(roomId)),
      this.purge(s, 'restrictions', this.names.roomScope(roomId)),
      this.purge(s, 'invitations', this.names.roomScope(roomId)),
      this.purge(s, 'modlog', this.names.modlog(roomId)),
      this.purge(s, 'messages', this.names.roomScope(roomId)),
      this.purge(s, 'seqs', this.names.roomLog(roomId)),
      this.purge(s, 'reads', this.names.roomScope(roomId)),
    ]);
    await this.cas<RoomValue, void>(s, 'rooms', this.names.room(roomId), (cur) =>
      cur?.d && cur.inc === inc ? { result: undefined, next: DELETE } : { result: undefined },
    );
  }

  async listRooms(): Promise<RoomRecord[]> {
    return this.exec(async (s) => {
      const entries = await this.listValues<RoomValue>(s.kv.rooms, '>');
      return entries
        .filter((e) => !e.value.d)
        .map((e) => e.value.r)
        .sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.id, b.id));
    });
  }

  async countRooms(): Promise<number> {
    return this.exec(async (s) => (await this.listKeys(s.kv.rooms, '>')).length);
  }

  // ------------------------------------------------------------ membership

  async addMember(
    roomId: string,
    member: MemberRecord,
    limits: { maxRoomsPerUser?: number },
  ): Promise<AddMemberResult> {
    return this.exec(async (s) => {
      const memberKey = this.names.member(roomId, member.userId);
      const [room, existing] = await Promise.all([
        this.liveRoom(s, roomId),
        this.slot<MemberValue>(s.kv.members, memberKey),
      ]);
      // The local backend's order of answers: no_room, exists, full, then user_limit.
      if (!room) return 'no_room';
      if (existing.value) return 'exists';
      if (room.r.maxMembers !== null && room.n >= room.r.maxMembers) return 'full';

      // Step 1, the user's index: reserve (checks maxRoomsPerUser atomically).
      const limit = limits.maxRoomsPerUser === undefined ? undefined : count(limits.maxRoomsPerUser);
      let reserved = await this.reserveUserRoom(s, member.userId, roomId, limit);
      if (reserved === 'user_limit' && (await this.pruneUserRooms(s, member.userId)) > 0) {
        reserved = await this.reserveUserRoom(s, member.userId, roomId, limit);
      }
      if (reserved === 'user_limit') return 'user_limit';

      // Step 2, the room: take a place (checks maxMembers atomically).
      const placed = await this.cas<RoomValue, 'ok' | 'no_room' | 'full'>(
        s,
        'rooms',
        this.names.room(roomId),
        (cur) => {
          if (!cur || cur.d || cur.inc !== room.inc) return { result: 'no_room' };
          if (cur.r.maxMembers !== null && cur.n >= cur.r.maxMembers) return { result: 'full' };
          return { result: 'ok', next: { ...cur, n: cur.n + 1 } };
        },
      );
      if (placed !== 'ok') {
        if (reserved === 'reserved') await this.releaseUserRoom(s, member.userId, roomId);
        return placed;
      }

      // Step 3, the membership itself.
      let revision: number;
      try {
        revision = await s.kv.members.put(memberKey, jsonBytes(member), { previousSeq: existing.revision });
      } catch (err) {
        await this.adjustMemberCount(s, roomId, room.inc, -1);
        // The same user joined concurrently: theirs stands (and so does the index entry).
        if (isConflict(err)) return 'exists';
        if (reserved === 'reserved') await this.releaseUserRoom(s, member.userId, roomId);
        throw err;
      }

      // A deleteRoom may have purged the room between step 2 and 3: undo ours.
      const after = await this.liveRoom(s, roomId);
      if (!after || after.inc !== room.inc) {
        await this.deleteIfUnchanged(s.kv.members, memberKey, revision);
        if (reserved === 'reserved') await this.releaseUserRoom(s, member.userId, roomId);
        return 'no_room';
      }
      return 'added';
    });
  }

  private adjustMemberCount(s: Session, roomId: string, inc: string, by: number): Promise<void> {
    return this.cas<RoomValue, void>(s, 'rooms', this.names.room(roomId), (cur) =>
      cur && cur.inc === inc
        ? { result: undefined, next: { ...cur, n: Math.max(0, cur.n + by) } }
        : { result: undefined },
    );
  }

  /** Add a room to a user's index unless it holds `limit` rooms already. */
  private reserveUserRoom(
    s: Session,
    userId: string,
    roomId: string,
    limit: number | undefined,
  ): Promise<'reserved' | 'already' | 'user_limit'> {
    return this.cas<UserRoomsValue, 'reserved' | 'already' | 'user_limit'>(
      s,
      'members',
      this.names.userRooms(userId),
      (cur) => {
        const list = cur ?? [];
        if (list.some(([id]) => id === roomId)) return { result: 'already' };
        if (limit !== undefined && list.length >= limit) return { result: 'user_limit' };
        return { result: 'reserved', next: [...list, [roomId, Date.now()]] };
      },
    );
  }

  private releaseUserRoom(s: Session, userId: string, roomId: string): Promise<void> {
    return this.cas<UserRoomsValue, void>(s, 'members', this.names.userRooms(userId), (cur) => {
      if (!cur || !cur.some(([id]) => id === roomId)) return { result: undefined };
      const next = cur.filter(([id]) => id !== roomId);
      return { result: undefined, next: next.length > 0 ? next : DELETE };
    });
  }

  /** Drop user-index entries older than STALE_RESERVATION_MS whose room does not list the user. */
  private async pruneUserRooms(s: Session, userId: string): Promise<number> {
    const list = (await this.value<UserRoomsValue>(s.kv.members, this.names.userRooms(userId))) ?? [];
    const old = list.filter(([, at]) => at <= Date.now() - STALE_RESERVATION_MS);
    const present = await Promise.all(
      old.map(([id]) => this.value<MemberValue>(s.kv.members, this.names.member(id, userId))),
    );
    const stale = new Set(old.filter((_, i) => present[i] === null).map(([id]) => id));
    if (stale.size === 0) return 0;
    return this.cas<UserRoomsValue, number>(s, 'members', this.names.userRooms(userId), (cur) => {
      const next = (cur ?? []).filter(([id]) => !stale.has(id));
      const removed = (cur ?? []).length - next.length;
      if (removed === 0) return { result: 0 };
      return { result: removed, next: next.length > 0 ? next : DELETE };
    });
  }

  async removeMember(roomId: string, userId: string): Promise<boolean> {
    return this.exec(async (s) => {
      const removed = await this.cas<MemberValue, boolean>(
        s,
        'members',
        this.names.member(roomId, userId),
        (cur) => (cur ? { result: true, next: DELETE } : { result: false }),
      );
      if (!removed) return false;
      const room = await this.liveRoom(s, roomId);
      if (room) await this.adjustMemberCount(s, roomId, room.inc, -1);
      await this.releaseUserRoom(s, userId, roomId);
      return true;
    });
  }

  async getMember(roomId: string, userId: string): Promise<MemberRecord | null> {
    return this.exec((s) => this.value<MemberValue>(s.kv.members, this.names.member(roomId, userId)));
  }

  async setMemberRole(roomId: string, userId: string, role: MemberRecord['role']): Promise<boolean> {
    return this.exec((s) =>
      this.cas<MemberValue, boolean>(s, 'members', this.names.member(roomId, userId), (cur) =>
        cur ? { result: true, next: { ...cur, role } } : { result: false },
      ),
    );
  }

  async listMembers(roomId: string): Promise<MemberRecord[]> {
    return this.exec(async (s) => {
      const entries = await this.listValues<MemberValue>(s.kv.members, this.names.membersOf(roomId));
      return entries
        .map((e) => e.value)
        .sort((a, b) => compare(a.joinedAt, b.joinedAt) || compare(a.userId, b.userId));
    });
  }

  async countMembers(roomId: string): Promise<number> {
    return this.exec(async (s) => (await this.liveRoom(s, roomId))?.n ?? 0);
  }

  async userRooms(userId: string): Promise<string[]> {
    return this.exec(async (s) => {
      const list = await this.value<UserRoomsValue>(s.kv.members, this.names.userRooms(userId));
      return (list ?? []).map(([id]) => id);
    });
  }

  /**
   * Write a room-scoped key if the room exists, then check the room again: if
   * it was deleted (or re-created) meanwhile, a deleteRoom may have purged
   * before our write landed, so ours is removed. Returns whether it stands.
   */
  protected async putInRoom(
    s: Session,
    roomId: string,
    bucket: BucketId,
    key: string,
    value: unknown,
  ): Promise<boolean> {
    const room = await this.liveRoom(s, roomId);
    if (!room) return false;
    const revision = await s.kv[bucket].put(key, jsonBytes(value));
    const after = await this.liveRoom(s, roomId);
    if (after?.inc === room.inc) return true;
    await this.deleteIfUnchanged(s.kv[bucket], key, revision);
    return false;
  }
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
