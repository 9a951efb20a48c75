import { StreamingEvents } from '../events/streaming-events';
import { createHash, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { FanoutService } from '../connections/fanout.service';
import { PresenceService } from '../presence/presence.service';
import { TypingService } from '../typing/typing.service';
import { StreamingError } from '../protocol/streaming-error';
import { WireMember, WirePresence, WireRoom, memberToWire, roomToWire } from '../protocol/wire';
import { RoomPermission, ROLE_RANK, outranks, roleHas } from './room-permissions';
import {
  InjectBroker,
  InjectReadStateStore,
  InjectRoomStore,
  InjectStreamingOptions,
} from '../streaming.constants';
import {
  Broker,
  MemberRecord,
  ModerationLogEntry,
  ReadStateStore,
  RoomRecord,
  RoomRole,
  RoomStore,
} from '../interfaces';

/** Fields of a new room. */
export interface CreateRoomInput {
  name: string;
  description?: string;
  private?: boolean;
  maxMembers?: number | null;
  metadata?: Record<string, unknown>;
}

/**
 * The id of the direct room of two users: the same from either side and on
 * every node, so concurrent `open_direct` calls all name one room.
 */
export function directRoomId(a: string, b: string): string {
  const [x, y] = [a, b].sort();
  return `dm-${createHash('sha256').update(`${x}\u0000${y}`).digest('base64url').slice(0, 32)}`;
}

/** A room with its members, as `GET /api/rooms/:id` answers. */
export interface RoomDetails extends WireRoom {
  members: WireMember[];
}

/** Payload of `room_joined`. */
export interface RoomJoinedEvent {
  room_id: string;
  room: WireRoom;
  members: WireMember[];
  presence: WirePresence[];
  /** The room's latest seq: a client resumes from here. */
  latest_seq: number;
  /** How far the joining user has read (`mark_read`); 0 when never. */
  last_read_seq: number;
}

/**
 * Rooms and membership, enforced the same way for WebSocket, SSE, REST and
 * server code. Membership belongs to the user: every connection of a member,
 * on any node, receives the room's events.
 */
@Injectable()
export class RoomService {
  constructor(
    @InjectBroker() private readonly broker: Broker,
    @InjectRoomStore() private readonly roomStore: RoomStore,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly fanout: FanoutService,
    private readonly presence: PresenceService,
    private readonly typing: TypingService,
    @InjectReadStateStore() private readonly readState: ReadStateStore,
    private readonly events: StreamingEvents,
  ) {}

  private ensureEnabled(): void {
    if (!this.options.enableRooms)
      throw new StreamingError('feature_disabled', 'rooms are disabled on this server');
  }

  /** The room or `room_not_found`. */
  async require(roomId: string): Promise<RoomRecord> {
    this.ensureEnabled();
    const room = await this.roomStore.getRoom(roomId);
    if (!room) throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
    return room;
  }

  /** The caller's membership or `not_room_member`. */
  async requireMember(roomId: string, userId: string): Promise<MemberRecord> {
    await this.require(roomId);
    const member = await this.roomStore.getMember(roomId, userId);
    if (!member) throw new StreamingError('not_room_member', `you are not a member of room ${roomId}`);
    return member;
  }

  /** Membership with a permission, or `forbidden`. */
  async requirePermission(roomId: string, userId: string, permission: RoomPermission): Promise<MemberRecord> {
    const member = await this.requireMember(roomId, userId);
    if (!roleHas(member.role, permission)) {
      throw new StreamingError(
        'forbidden',
        `role ${member.role} may not ${permission.replace('_', ' ')} here`,
      );
    }
    return member;
  }

  /** True when the user is a member holding the permission. */
  async hasPermission(roomId: string, userId: string, permission: RoomPermission): Promise<boolean> {
    const member = await this.roomStore.getMember(roomId, userId);
    return !!member && roleHas(member.role, permission);
  }

  async toWire(room: RoomRecord): Promise<WireRoom> {
    return roomToWire(room, await this.roomStore.countMembers(room.id));
  }

  /** Create a room; the creator becomes its owner and first member. */
  async create(userId: string, input: CreateRoomInput): Promise<WireRoom> {
    this.ensureEnabled();
    const mine = await this.roomStore.userRooms(userId);
    if (mine.length >= this.options.maxRoomsPerUser) {
      throw new StreamingError(
        'limit_exceeded',
        `you are in ${mine.length} rooms, the limit is ${this.options.maxRoomsPerUser}`,
      );
    }
    // Rooms the user owns count too, joined or not: leaving does not free a slot (deleting does).
    const owned = (await this.roomStore.listRooms()).filter((r) => r.owner === userId).length;
    if (owned >= this.options.maxRoomsOwnedPerUser) {
      throw new StreamingError(
        'limit_exceeded',
        `you own ${owned} rooms, the limit is ${this.options.maxRoomsOwnedPerUser}`,
      );
    }
    const now = new Date().toISOString();
    const room: RoomRecord = {
      id: randomUUID(),
      name: input.name,
      description: input.description ?? '',
      private: input.private ?? false,
      owner: userId,
      maxMembers: input.maxMembers ?? null,
      createdAt: now,
      metadata: input.metadata ?? {},
    };
    await this.roomStore.createRoom(room, { userId, role: 'owner', joinedAt: now });
    await this.fanout.indexUserInRoom(userId, room.id);
    await this.fanout.publishToUser(userId, 'room_created', { room_id: room.id }, { join: room.id });
    const wire = roomToWire(room, 1);
    if (!room.private) await this.fanout.publishToEveryone('room_listed', { room: wire });
    return wire;
  }

  /**
   * `open_direct`: the direct room of `userId` and `otherId`, created on
   * first use (private, both `member`s, at most two). Two nodes creating it
   * at once create one room: the id is fixed and creation refuses a taken
   * id. Each user who becomes a member here gets `room_joined` on every
   * connection. Opening with yourself is `invalid_message`.
   */
  async openDirect(userId: string, otherId: string): Promise<WireRoom> {
    this.ensureEnabled();
    if (otherId === userId) throw new StreamingError('invalid_message', 'a direct room needs another user');
    const id = directRoomId(userId, otherId);
    const now = new Date().toISOString();
    let room = await this.roomStore.getRoom(id);
    const joined: string[] = [];
    if (!room) {
      // A new direct room counts against the opener's room limit (the state it makes is bounded).
      const mine = await this.roomStore.userRooms(userId);
      if (mine.length >= this.options.maxRoomsPerUser) {
        throw new StreamingError(
          'limit_exceeded',
          `you are in ${mine.length} rooms, the limit is ${this.options.maxRoomsPerUser}`,
        );
      }
      const [x, y] = [userId, otherId].sort();
      const record: RoomRecord = {
        id,
        name: `${x}, ${y}`,
        description: '',
        private: true,
        owner: '',
        maxMembers: 2,
        createdAt: now,
        metadata: {},
        kind: 'direct',
      };
      try {
        await this.roomStore.createRoom(record, { userId, role: 'member', joinedAt: now });
        room = record;
        joined.push(userId);
      } catch (err) {
        room = await this.roomStore.getRoom(id); // created elsewhere at the same moment
        if (!room) throw err;
      }
    }
    // Both are members: either may have left, and a concurrent creator may not have added the other yet.
    for (const u of [userId, otherId]) {
      if (joined.includes(u) || (await this.roomStore.getMember(id, u))) continue;
      const result = await this.roomStore.addMember(id, { userId: u, role: 'member', joinedAt: now }, {});
      if (result === 'no_room') throw new StreamingError('room_not_found', `room ${id} does not exist`);
      if (result === 'added') joined.push(u);
    }
    for (const u of joined) {
      await this.fanout.indexUserInRoom(u, id);
      await this.fanout.publishToUser(u, 'room_joined', await this.joinedEvent(room, u), { join: id });
    }
    return this.toWire(room);
  }

  /** `forbidden` in a direct room: nobody invites, changes roles or moderates there. */
  requireNotDirect(room: RoomRecord, what: string): void {
    if (room.kind === 'direct') throw new StreamingError('forbidden', `nobody can ${what} in a direct room`);
  }

  /** A room with its members. */
  async get(roomId: string): Promise<RoomDetails> {
    const room = await this.require(roomId);
    const members = await this.roomStore.listMembers(roomId);
    return { ...roomToWire(room, members.length), members: members.map(memberToWire) };
  }

  /** Rooms the user may see: public ones and private ones they belong to. */
  async list(userId: string): Promise<WireRoom[]> {
    this.ensureEnabled();
    const rooms = await this.roomStore.listRooms();
    const mine = new Set(await this.roomStore.userRooms(userId));
    const visible = rooms.filter((r) => !r.private || mine.has(r.id));
    visible.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    return Promise.all(visible.map((r) => this.toWire(r)));
  }

  /** The users among `userIds` who share a room with `userId` (`userId` itself included), in order. */
  async sharingRoom(userId: string, userIds: string[]): Promise<string[]> {
    const mine = new Set(await this.roomStore.userRooms(userId));
    const unique = [...new Set(userIds)];
    const shares = await Promise.all(
      unique.map(async (u) => u === userId || (await this.roomStore.userRooms(u)).some((r) => mine.has(r))),
    );
    const visible = new Set(unique.filter((_, i) => shares[i]));
    return userIds.filter((u) => visible.has(u));
  }

  async members(roomId: string): Promise<WireMember[]> {
    await this.require(roomId);
    return (await this.roomStore.listMembers(roomId)).map(memberToWire);
  }

  private async joinedEvent(room: RoomRecord, userId: string): Promise<RoomJoinedEvent> {
    const members = await this.roomStore.listMembers(room.id);
    return {
      room_id: room.id,
      room: roomToWire(room, members.length),
      members: members.map(memberToWire),
      presence: await this.presence.presenceOf(members.map((m) => m.userId)),
      latest_seq: await this.broker.latestSeq(room.id),
      last_read_seq: (await this.readState.readSeqs(userId, [room.id]))[room.id] ?? 0,
    };
  }

  /**
   * Join a room. A member joining again gets `room_joined` again and nobody
   * else hears of it. Returns the `room_joined` payload.
   */
  async join(userId: string, roomId: string): Promise<RoomJoinedEvent> {
    const room = await this.require(roomId);
    const existing = await this.roomStore.getMember(roomId, userId);
    if (!existing) {
      this.requireNotDirect(room, 'join');
      if (await this.roomStore.getRestriction(roomId, 'ban', userId)) {
        throw new StreamingError('banned', `you are banned from room ${roomId}`);
      }
      const invited = room.private ? await this.roomStore.getInvitation(roomId, userId) : null;
      if (room.private && !invited) {
        throw new StreamingError('forbidden', `room ${roomId} is private: an invitation is needed`);
      }
      const result = await this.roomStore.addMember(
        roomId,
        { userId, role: 'member', joinedAt: new Date().toISOString() },
        { maxRoomsPerUser: this.options.maxRoomsPerUser },
      );
      if (result === 'no_room') throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
      if (result === 'full') throw new StreamingError('room_full', `room ${roomId} is full`);
      if (result === 'user_limit') {
        throw new StreamingError(
          'limit_exceeded',
          `you may be in at most ${this.options.maxRoomsPerUser} rooms`,
        );
      }
      if (invited) await this.roomStore.removeInvitation(roomId, userId);
    }
    await this.fanout.indexUserInRoom(userId, roomId);
    const event = await this.joinedEvent(room, userId);
    await this.fanout.publishToUser(userId, 'room_joined', event, { join: roomId });
    if (!existing) {
      await this.fanout.publishToRoom(
        roomId,
        'user_joined',
        { room_id: roomId, user_id: userId },
        { exceptUser: userId },
      );
    }
    return event;
  }

  /**
   * Invite a user (admins and the owner; `actorId` null = the server). The
   * invitee's connections get `room_invitation`; private rooms can then be joined.
   */
  async invite(actorId: string | null, roomId: string, userId: string): Promise<void> {
    const room = await this.require(roomId);
    this.requireNotDirect(room, 'invite');
    if (actorId !== null) await this.requirePermission(roomId, actorId, 'invite');
    if (await this.roomStore.getMember(roomId, userId)) {
      throw new StreamingError('already_member', `${userId} is already a member of room ${roomId}`);
    }
    if (await this.roomStore.getRestriction(roomId, 'ban', userId)) {
      throw new StreamingError('banned', `${userId} is banned from room ${roomId}`);
    }
    const by = actorId ?? 'server';
    await this.roomStore.addInvitation(roomId, { userId, invitedBy: by, at: new Date().toISOString() });
    await this.fanout.publishToUser(userId, 'room_invitation', {
      room_id: roomId,
      room_name: room.name,
      invited_by: by,
    });
  }

  /** Change a room's settings (admins and the owner; `actorId` null = the server). */
  async update(
    actorId: string | null,
    roomId: string,
    patch: { name?: string; description?: string; private?: boolean; maxMembers?: number | null },
  ): Promise<WireRoom> {
    if (actorId !== null) await this.requirePermission(roomId, actorId, 'manage_room');
    else await this.require(roomId);
    const clean = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    const before = await this.require(roomId);
    const room = await this.roomStore.updateRoom(roomId, clean);
    if (!room) throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
    const wire = await this.toWire(room);
    await this.fanout.publishToRoom(roomId, 'room_updated', {
      room_id: roomId,
      room: wire,
      updated_by: actorId,
    });
    if (!room.private) await this.fanout.publishToEveryone('room_listed', { room: wire });
    else if (!before.private) await this.fanout.publishToEveryone('room_unlisted', { room_id: roomId });
    return wire;
  }

  /** Leave a room. An owner leaving hands the room to the highest-ranked remaining member. */
  async leave(userId: string, roomId: string): Promise<void> {
    const member = await this.requireMember(roomId, userId);
    await this.removeMembership(roomId, userId, 'room_left', { room_id: roomId });
    await this.fanout.publishToRoom(
      roomId,
      'user_left',
      { room_id: roomId, user_id: userId },
      { exceptUser: userId },
    );
    if (member.role === 'owner') await this.handOver(roomId, userId);
  }

  /** Remove a membership and tell the user's connections (`type` to them); used by leave, kick and ban. */
  async removeMembership(
    roomId: string,
    userId: string,
    type: string,
    data: Record<string, unknown>,
  ): Promise<void> {
    await this.roomStore.removeMember(roomId, userId);
    await this.typing.clear(userId, roomId);
    await this.fanout.publishToUser(userId, type, data, { leave: roomId });
  }

  private async handOver(roomId: string, oldOwner: string): Promise<void> {
    const members = await this.roomStore.listMembers(roomId);
    if (members.length === 0) return;
    const next = [...members].sort(
      (a, b) => ROLE_RANK[b.role] - ROLE_RANK[a.role] || a.joinedAt.localeCompare(b.joinedAt),
    )[0];
    await this.roomStore.setMemberRole(roomId, next.userId, 'owner');
    await this.roomStore.updateRoom(roomId, { owner: next.userId });
    await this.fanout.publishToRoom(roomId, 'role_changed', {
      room_id: roomId,
      user_id: next.userId,
      role: 'owner',
      changed_by: oldOwner,
    });
  }

  /** Change a member's role (PROTOCOL.md section 5). Giving `owner` transfers ownership. */
  async setRole(actorId: string, roomId: string, targetId: string, role: RoomRole): Promise<void> {
    this.requireNotDirect(await this.require(roomId), 'change roles');
    const actor = await this.requirePermission(roomId, actorId, 'set_role');
    const target = await this.roomStore.getMember(roomId, targetId);
    if (!target) throw new StreamingError('not_room_member', `${targetId} is not a member of room ${roomId}`);
    if (actorId === targetId) throw new StreamingError('forbidden', 'you cannot change your own role');
    if (!outranks(actor.role, target.role))
      throw new StreamingError('forbidden', 'you cannot change the role of an equal or higher role');
    if (actor.role !== 'owner' && ROLE_RANK[role] > ROLE_RANK.moderator) {
      throw new StreamingError('forbidden', 'admins may only set member or moderator');
    }
    await this.roomStore.setMemberRole(roomId, targetId, role);
    const entry: ModerationLogEntry = {
      action: 'set_role',
      roomId,
      moderatorId: actorId,
      targetId,
      reason: '',
      at: new Date().toISOString(),
      role,
    };
    await this.roomStore.appendModerationLog(roomId, entry, 500);
    this.events.emit('moderation', { roomId, entry });
    if (role === 'owner') {
      await this.roomStore.setMemberRole(roomId, actorId, 'admin');
      await this.roomStore.updateRoom(roomId, { owner: targetId });
    }
    await this.fanout.publishToRoom(roomId, 'role_changed', {
      room_id: roomId,
      user_id: targetId,
      role,
      changed_by: actorId,
    });
    if (role === 'owner') {
      await this.fanout.publishToRoom(roomId, 'role_changed', {
        room_id: roomId,
        user_id: actorId,
        role: 'admin',
        changed_by: actorId,
      });
    }
  }

  /** Delete a room (owner only, or the server when `actorId` is null). */
  async delete(actorId: string | null, roomId: string): Promise<void> {
    const room = await this.require(roomId);
    if (actorId !== null) await this.requirePermission(roomId, actorId, 'delete_room');
    const members = await this.roomStore.listMembers(roomId);
    await this.fanout.publishToRoom(roomId, 'room_deleted', { room_id: roomId, deleted_by: actorId });
    await this.roomStore.deleteRoom(roomId);
    for (const m of members)
      await this.fanout.publishToUser(m.userId, 'room_left', { room_id: roomId }, { leave: roomId });
    if (!room.private) await this.fanout.publishToEveryone('room_unlisted', { room_id: roomId });
  }
}
