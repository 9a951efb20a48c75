import { StreamingEvents } from '../events/streaming-events';
import { StreamingLogger } from '../common/streaming-logger';
import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { FanoutService } from '../connections/fanout.service';
import { StreamingError } from '../protocol/streaming-error';
import { RoomService } from '../rooms/room.service';
import { RoomPermission, outranks } from '../rooms/room-permissions';
import { TypingService } from '../typing/typing.service';
import { InjectRoomStore } from '../streaming.constants';
import { ModerationLogEntry, Restriction, RoomStore } from '../interfaces';

/** Moderation actions of PROTOCOL.md section 4 (`moderate`). */
export type ModerationAction = 'ban' | 'unban' | 'kick' | 'mute' | 'unmute';

/** A moderation request. `actorId` null means the server itself (no permission checks). */
export interface ModerationRequest {
  roomId: string;
  action: ModerationAction;
  targetId: string;
  reason?: string;
  /** For ban and mute: lifts itself after this many seconds; absent = until lifted. */
  durationS?: number;
}

/** Entries kept in each room's moderation log. */
export const MODERATION_LOG_SIZE = 500;

/** Longest `duration_s` of a timed ban or mute: ten years (longer: leave it out, it lasts until lifted). */
export const MAX_RESTRICTION_DURATION_S = 10 * 365 * 24 * 3600;

/** Longest delay Node's timers take (2^31 - 1 ms); a longer one would fire after 1 ms. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

const PERMISSION: Record<ModerationAction, RoomPermission> = {
  kick: 'kick',
  mute: 'mute',
  unmute: 'mute',
  ban: 'ban',
  unban: 'ban',
};

const EVENT: Record<ModerationAction, string> = {
  kick: 'member_kicked',
  mute: 'member_muted',
  unmute: 'member_unmuted',
  ban: 'member_banned',
  unban: 'member_unbanned',
};

/**
 * Kick, mute, unmute, ban and unban, effective at once on every live
 * connection of the target (on every node), with a moderation log.
 * Timed mutes and bans lift themselves; this node announces the ones it set.
 */
@Injectable()
export class ModerationService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new StreamingLogger('streaming.rooms.moderation');
  private readonly expiries = new Map<string, NodeJS.Timeout>();

  constructor(
    @InjectRoomStore() private readonly roomStore: RoomStore,
    private readonly rooms: RoomService,
    private readonly fanout: FanoutService,
    private readonly typing: TypingService,
    private readonly events: StreamingEvents,
  ) {}

  /** Re-arm the announcements of timed mutes and bans that outlived a restart. */
  async onApplicationBootstrap(): Promise<void> {
    try {
      for (const room of await this.roomStore.listRooms()) {
        for (const r of await this.roomStore.listRestrictions(room.id)) {
          if (r.until !== null) this.scheduleExpiry(room.id, r.kind, r.userId, r.until);
        }
      }
    } catch (err) {
      this.logger.warn(`re-arming timed restrictions failed: ${String(err)}`);
    }
  }

  onModuleDestroy(): void {
    for (const t of this.expiries.values()) clearTimeout(t);
    this.expiries.clear();
  }

  /** Carry out a moderation action; returns the event payload sent to the room. */
  async moderate(actorId: string | null, req: ModerationRequest): Promise<Record<string, unknown>> {
    const { roomId, action, targetId } = req;
    const reason = req.reason ?? '';
    this.rooms.requireNotDirect(await this.rooms.require(roomId), 'moderate');
    const target = await this.roomStore.getMember(roomId, targetId);
    if (actorId !== null) {
      const actor = await this.rooms.requirePermission(roomId, actorId, PERMISSION[action]);
      if (actorId === targetId) throw new StreamingError('forbidden', 'you cannot moderate yourself');
      if (target && !outranks(actor.role, target.role)) {
        throw new StreamingError('forbidden', `you cannot ${action} a member of equal or higher role`);
      }
    } else if (target?.role === 'owner' && action !== 'unban' && action !== 'unmute') {
      throw new StreamingError('forbidden', 'the owner cannot be moderated');
    }
    if ((action === 'kick' || action === 'mute') && !target) {
      throw new StreamingError('not_room_member', `${targetId} is not a member of room ${roomId}`);
    }
    if (req.durationS !== undefined && !(req.durationS >= 1 && req.durationS <= MAX_RESTRICTION_DURATION_S)) {
      throw new StreamingError(
        'invalid_message',
        `duration_s must be between 1 and ${MAX_RESTRICTION_DURATION_S} (leave it out for "until lifted")`,
      );
    }
    const now = Date.now();
    const until = req.durationS !== undefined ? now + req.durationS * 1000 : null;
    const event: Record<string, unknown> = {
      room_id: roomId,
      target_id: targetId,
      moderator_id: actorId,
      reason,
    };
    if (until !== null && (action === 'mute' || action === 'ban')) {
      event.duration_s = req.durationS;
      event.until = new Date(until).toISOString();
    }

    switch (action) {
      case 'kick':
      case 'ban':
        if (action === 'ban') await this.restrict(roomId, 'ban', targetId, actorId, reason, until);
        // Tell the room (target included) first, then cut the target's connections off the room.
        await this.announce(roomId, targetId, !!target, EVENT[action], event);
        if (target) {
          await this.rooms.removeMembership(roomId, targetId, 'room_left', {
            room_id: roomId,
            reason: action === 'ban' ? 'banned' : 'kicked',
          });
        }
        break;
      case 'mute':
        await this.restrict(roomId, 'mute', targetId, actorId, reason, until);
        await this.typing.clear(targetId, roomId);
        await this.fanout.publishToRoom(roomId, EVENT[action], event);
        break;
      case 'unmute':
      case 'unban': {
        const kind = action === 'unmute' ? 'mute' : 'ban';
        const lifted = await this.roomStore.clearRestriction(roomId, kind, targetId);
        this.cancelExpiry(roomId, kind, targetId);
        if (!lifted)
          throw new StreamingError(
            'invalid_message',
            `${targetId} is not ${kind === 'mute' ? 'muted' : 'banned'} in room ${roomId}`,
          );
        await this.announce(roomId, targetId, !!target, EVENT[action], event);
        break;
      }
    }
    const entry: ModerationLogEntry = {
      action,
      roomId,
      moderatorId: actorId,
      targetId,
      reason,
      at: new Date(now).toISOString(),
    };
    if (req.durationS !== undefined && (action === 'mute' || action === 'ban'))
      entry.durationS = req.durationS;
    await this.roomStore.appendModerationLog(roomId, entry, MODERATION_LOG_SIZE);
    this.events.emit('moderation', { roomId, entry });
    return event;
  }

  /** The newest entries of a room's moderation log (admins and the owner only, or the server). */
  async log(actorId: string | null, roomId: string, limit = 100): Promise<ModerationLogEntry[]> {
    if (actorId !== null) await this.rooms.requirePermission(roomId, actorId, 'ban');
    else await this.rooms.require(roomId);
    return this.roomStore.getModerationLog(roomId, Math.min(Math.max(limit, 1), MODERATION_LOG_SIZE));
  }

  /** Active bans and mutes of a room. */
  async restrictions(roomId: string): Promise<Restriction[]> {
    await this.rooms.require(roomId);
    return this.roomStore.listRestrictions(roomId);
  }

  private async restrict(
    roomId: string,
    kind: Restriction['kind'],
    userId: string,
    by: string | null,
    reason: string,
    until: number | null,
  ): Promise<void> {
    await this.roomStore.setRestriction(roomId, {
      kind,
      userId,
      by: by ?? 'server',
      reason,
      at: new Date().toISOString(),
      until,
    });
    this.cancelExpiry(roomId, kind, userId);
    if (until !== null) this.scheduleExpiry(roomId, kind, userId, until);
  }

  /** A moderation event goes to the room and to the target (who, not a member, does not hear the room). */
  private async announce(
    roomId: string,
    targetId: string,
    targetIsMember: boolean,
    type: string,
    event: Record<string, unknown>,
  ): Promise<void> {
    await this.fanout.publishToRoom(roomId, type, event);
    if (!targetIsMember) await this.fanout.publishToUser(targetId, type, event);
  }

  private key = (roomId: string, kind: string, userId: string): string =>
    `${roomId}\u0000${kind}\u0000${userId}`;

  private cancelExpiry(roomId: string, kind: string, userId: string): void {
    const k = this.key(roomId, kind, userId);
    const t = this.expiries.get(k);
    if (t) clearTimeout(t);
    this.expiries.delete(k);
  }

  /** Announce `member_unmuted` / `member_unbanned` when a timed restriction set here lapses. */
  private scheduleExpiry(
    roomId: string,
    kind: Restriction['kind'],
    userId: string,
    until: number,
    /** At least this long (a restriction the backend still reports after its end: ask again later). */
    minDelayMs = 0,
  ): void {
    const k = this.key(roomId, kind, userId);
    const t = setTimeout(
      () => {
        this.expiries.delete(k);
        void this.expired(roomId, kind, userId, until);
      },
      // A few ms late: timers may fire just before Date.now() reaches `until`. Far
      // expiries are reached in steps of the longest delay Node's timers take.
      Math.min(Math.max(minDelayMs, until - Date.now()) + 5, MAX_TIMER_DELAY_MS),
    );
    t.unref();
    this.expiries.set(k, t);
  }

  private async expired(
    roomId: string,
    kind: Restriction['kind'],
    userId: string,
    until: number,
  ): Promise<void> {
    if (Date.now() < until) {
      this.scheduleExpiry(roomId, kind, userId, until); // one step of a far expiry, or a timer a little early
      return;
    }
    try {
      const current = await this.roomStore.getRestriction(roomId, kind, userId);
      if (current) {
        // Same restriction, timer early: try again at its end; a different `until` means it was renewed.
        if (current.until === until) this.scheduleExpiry(roomId, kind, userId, until, 1000);
        return;
      }
      const previous = until;
      const event = {
        room_id: roomId,
        target_id: userId,
        moderator_id: null,
        reason: 'expired',
        expired_at: new Date(previous).toISOString(),
      };
      const type = kind === 'mute' ? 'member_unmuted' : 'member_unbanned';
      await this.announce(roomId, userId, !!(await this.roomStore.getMember(roomId, userId)), type, event);
    } catch (err) {
      this.logger.warn(`expiry of ${kind} for ${userId} in ${roomId} failed: ${String(err)}`);
    }
  }
}
