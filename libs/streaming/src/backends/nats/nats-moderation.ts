import type { Invitation, ModerationLogEntry, Restriction, RoomStore } from '../../interfaces';
import { DELETE } from './nats-core';
import { NatsRooms } from './nats-rooms';
import { count } from './nats-util';

interface ModlogValue {
  /** Room incarnation: a log left by a deleted room with the same id is ignored. */
  i: string;
  e: ModerationLogEntry[];
}

/**
 * The rest of the NATS backend's {@link RoomStore} (layer 4, on
 * {@link NatsRooms}): bans and mutes, invitations and the moderation log, all
 * scoped to a room (written through `putInRoom`, purged by deleteRoom).
 *
 * Layout:
 * - restrictions: `<room>.<kind>.<user>` -> the ban or mute (expired ones are
 *   removed when read)
 * - invitations: `<room>.<user>` -> the invitation
 * - modlog: room -> its log (one JSON array, bounded, tagged with the room's
 *   incarnation)
 */
export abstract class NatsModeration extends NatsRooms implements RoomStore {
  // ------------------------------------------------------------ bans and mutes

  async setRestriction(roomId: string, restriction: Restriction): Promise<void> {
    await this.exec((s) =>
      this.putInRoom(
        s,
        roomId,
        'restrictions',
        this.names.restriction(roomId, restriction.kind, restriction.userId),
        restriction,
      ),
    );
  }

  async getRestriction(
    roomId: string,
    kind: Restriction['kind'],
    userId: string,
  ): Promise<Restriction | null> {
    return this.exec(async (s) => {
      const key = this.names.restriction(roomId, kind, userId);
      const slot = await this.slot<Restriction>(s.kv.restrictions, key);
      if (!slot.value) return null;
      if (isExpired(slot.value)) {
        await this.deleteIfUnchanged(s.kv.restrictions, key, slot.revision);
        return null;
      }
      return slot.value;
    });
  }

  async clearRestriction(roomId: string, kind: Restriction['kind'], userId: string): Promise<boolean> {
    return this.exec((s) =>
      this.cas<Restriction, boolean>(
        s,
        'restrictions',
        this.names.restriction(roomId, kind, userId),
        (cur) => (cur ? { result: true, next: DELETE } : { result: false }),
      ),
    );
  }

  async listRestrictions(roomId: string): Promise<Restriction[]> {
    return this.exec(async (s) => {
      const entries = await this.listValues<Restriction>(s.kv.restrictions, this.names.roomScope(roomId));
      const expired = entries.filter((e) => isExpired(e.value));
      if (expired.length > 0) {
        await Promise.all(expired.map((e) => this.deleteIfUnchanged(s.kv.restrictions, e.key, e.revision)));
      }
      return entries.filter((e) => !isExpired(e.value)).map((e) => e.value);
    });
  }

  // ------------------------------------------------------------ invitations

  async addInvitation(roomId: string, invitation: Invitation): Promise<void> {
    await this.exec((s) =>
      this.putInRoom(s, roomId, 'invitations', this.names.invitation(roomId, invitation.userId), invitation),
    );
  }

  async getInvitation(roomId: string, userId: string): Promise<Invitation | null> {
    return this.exec((s) => this.value<Invitation>(s.kv.invitations, this.names.invitation(roomId, userId)));
  }

  async removeInvitation(roomId: string, userId: string): Promise<boolean> {
    return this.exec((s) =>
      this.cas<Invitation, boolean>(s, 'invitations', this.names.invitation(roomId, userId), (cur) =>
        cur ? { result: true, next: DELETE } : { result: false },
      ),
    );
  }

  // ------------------------------------------------------------ moderation log

  async appendModerationLog(roomId: string, entry: ModerationLogEntry, maxEntries: number): Promise<void> {
    await this.exec(async (s) => {
      const room = await this.liveRoom(s, roomId);
      if (!room) return;
      const max = count(maxEntries);
      const clean = JSON.parse(JSON.stringify(entry)) as ModerationLogEntry;
      await this.cas<ModlogValue, void>(s, 'modlog', this.names.modlog(roomId), (cur) => {
        // A log left by a deleted room with the same id starts over.
        const entries = cur && cur.i === room.inc ? cur.e : [];
        const next = [...entries, clean];
        return { result: undefined, next: { i: room.inc, e: max === 0 ? [] : next.slice(-max) } };
      });
    });
  }

  async getModerationLog(roomId: string, limit: number): Promise<ModerationLogEntry[]> {
    return this.exec(async (s) => {
      const n = count(limit);
      if (n === 0) return [];
      const [room, log] = await Promise.all([
        this.liveRoom(s, roomId),
        this.value<ModlogValue>(s.kv.modlog, this.names.modlog(roomId)),
      ]);
      if (!room || !log || log.i !== room.inc) return [];
      return log.e.slice(-n);
    });
  }
}

const isExpired = (r: Restriction): boolean => r.until !== null && r.until <= Date.now();
