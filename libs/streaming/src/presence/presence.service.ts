import { StreamingLogger } from '../common/streaming-logger';
import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { FanoutService } from '../connections/fanout.service';
import { StreamingEvents } from '../events/streaming-events';
import { StreamingError } from '../protocol/streaming-error';
import { WirePresence, presenceToWire } from '../protocol/wire';
import { TypingService } from '../typing/typing.service';
import {
  InjectCounterStore,
  InjectNodeDirectory,
  InjectPresenceStore,
  InjectRoomStore,
  InjectStreamingOptions,
} from '../streaming.constants';
import { CounterStore, NodeDirectory, PresenceRecord, PresenceStore, RoomStore } from '../interfaces';

/** Presence statuses a user can be in. */
export type PresenceStatus = PresenceRecord['status'];

/** A reconnect within this many milliseconds does not flap offline/online. */
export const PRESENCE_GRACE_MS = 1000;

interface LocalPresence {
  status: PresenceStatus;
  custom?: string;
  /** Set by `set_presence`: activity does not override it. */
  manual: boolean;
  lastActivity: number;
  /** When this node last stored the user's record (0: not yet): the sweep refreshes it past half its TTL. */
  storedAt: number;
}

/**
 * Per-user presence across all of the user's connections: online with the
 * first connection, offline (with `last_seen`) when the last one closes (after
 * a short grace period, so a quick reconnect does not flap), away after
 * `presence_timeout` without activity (activity brings the user back), or a
 * status the user chose. Changes go to everyone sharing a room with the user.
 */
@Injectable()
export class PresenceService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new StreamingLogger('streaming.presence');
  /** Users with connections on this node. */
  private readonly local = new Map<string, LocalPresence>();
  private readonly offlineTimers = new Map<string, NodeJS.Timeout>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private reapTimer: NodeJS.Timeout | null = null;
  /** Set while a sweep runs: a slow backend does not stack sweeps. */
  private sweeping = false;
  /** Nodes seen alive at the last check (to notice the ones that die). */
  private knownNodes = new Set<string>();

  constructor(
    @InjectCounterStore() private readonly counters: CounterStore,
    @InjectRoomStore() private readonly roomStore: RoomStore,
    @InjectPresenceStore() private readonly presenceStore: PresenceStore,
    @InjectNodeDirectory() private readonly nodes: NodeDirectory,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly fanout: FanoutService,
    private readonly events: StreamingEvents,
    private readonly typing: TypingService,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.options.enablePresence) return;
    const timeoutMs = this.options.presenceTimeout * 1000;
    const every = Math.max(100, Math.min(this.options.presenceCleanup * 1000, timeoutMs / 2));
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.logger.warn(`presence sweep failed: ${String(err)}`));
    }, every);
    this.sweepTimer.unref();
    if (this.presenceStore.distributed) {
      this.reapTimer = setInterval(() => {
        this.reapDeadNodes().catch((err: unknown) => this.logger.warn(`node reaping failed: ${String(err)}`));
      }, this.options.heartbeatInterval * 1000);
      this.reapTimer.unref();
    }
  }

  onModuleDestroy(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.reapTimer) clearInterval(this.reapTimer);
    for (const t of this.offlineTimers.values()) clearTimeout(t);
    this.offlineTimers.clear();
  }

  private ensureEnabled(): void {
    if (!this.options.enablePresence)
      throw new StreamingError('feature_disabled', 'presence is disabled on this server');
  }

  /** TTL of a presence record: live nodes refresh it on every sweep, long before it lapses. */
  private get ttl(): number {
    return Math.max(this.options.presenceTimeout, this.options.nodeTimeout, this.options.presenceCleanup * 3);
  }

  /** Presence of users; users without a record are `offline`. */
  async presenceOf(userIds: string[]): Promise<WirePresence[]> {
    if (!this.options.enablePresence || userIds.length === 0) return [];
    const found = new Map((await this.presenceStore.getPresence(userIds)).map((p) => [p.userId, p]));
    return userIds.map((id) => {
      const p = found.get(id);
      return p ? presenceToWire(p) : { user_id: id, status: 'offline' as const, last_seen: null };
    });
  }

  /** `set_presence`: a status the user chose (not overridden by activity), with an optional custom text. */
  async set(userId: string, status: PresenceStatus, custom?: string): Promise<WirePresence> {
    this.ensureEnabled();
    const mine = this.local.get(userId);
    if (mine) {
      mine.manual = status !== 'online';
      mine.status = status;
      mine.custom = custom;
      mine.lastActivity = Date.now();
    }
    return this.publish(userId, status, custom);
  }

  /** Store and announce a status (no feature check; internal transitions). */
  private async publish(userId: string, status: PresenceStatus, custom?: string): Promise<WirePresence> {
    const record: PresenceRecord = { userId, status, lastSeen: new Date().toISOString() };
    if (custom !== undefined) record.custom = custom;
    await this.presenceStore.setPresence(record, this.ttl);
    const mine = this.local.get(userId);
    if (mine) mine.storedAt = Date.now();
    const wire = presenceToWire(record);
    this.events.emit('presence', { userId, presence: wire });
    const rooms = await this.roomStore.userRooms(userId);
    if (rooms.length > 0) {
      // One event per change: connections sharing several rooms with the user get it once.
      const dedupe = `p:${userId}:${record.lastSeen}:${status}`;
      for (const roomId of rooms) await this.fanout.publishToRoom(roomId, 'presence', wire, { dedupe });
    }
    return wire;
  }

  /** Any frame of a user's connection: keeps them online, and brings them back from automatic `away`. */
  touch(userId: string): void {
    const mine = this.local.get(userId);
    if (!mine) return;
    mine.lastActivity = Date.now();
    if (mine.status === 'away' && !mine.manual && this.options.enablePresence) {
      mine.status = 'online';
      void this.publish(userId, 'online').catch((err: unknown) =>
        this.logger.warn(`presence update failed: ${String(err)}`),
      );
    }
  }

  /** A connection of the user opened on this node. */
  async connected(userId: string): Promise<void> {
    const pending = this.offlineTimers.get(userId);
    if (pending) {
      clearTimeout(pending);
      this.offlineTimers.delete(userId);
    }
    const mine = this.local.get(userId);
    if (mine) {
      // A new connection is activity: it ends an automatic away.
      this.touch(userId);
      return;
    }
    this.local.set(userId, { status: 'online', manual: false, lastActivity: Date.now(), storedAt: 0 });
    await this.presenceStore.addUserNode(userId, this.options.nodeId);
    if (!this.options.enablePresence) return;
    const [current] = await this.presenceStore.getPresence([userId]);
    if (current && current.status !== 'offline') {
      // Still online elsewhere (another node, or within the grace period): keep the status they had.
      const state = this.local.get(userId);
      if (state && current.status !== 'away') {
        state.status = current.status;
        state.custom = current.custom;
        state.manual = current.status !== 'online';
      }
      if (current.status === 'away') await this.publish(userId, 'online');
      return;
    }
    await this.publish(userId, 'online');
  }

  /** The user's last connection on this node closed: offline after the grace period unless they come back. */
  disconnected(userId: string): void {
    if (this.fanout.registry.hasUser(userId) || this.offlineTimers.has(userId)) return;
    const timer = setTimeout(() => {
      this.offlineTimers.delete(userId);
      if (this.fanout.registry.hasUser(userId)) return;
      this.local.delete(userId);
      this.leftNode(userId).catch((err: unknown) =>
        this.logger.warn(`presence update failed: ${String(err)}`),
      );
    }, PRESENCE_GRACE_MS);
    timer.unref();
    this.offlineTimers.set(userId, timer);
  }

  /** The user has no connection on this node any more: offline unless connected on another live node. */
  private async leftNode(userId: string): Promise<void> {
    await this.presenceStore.removeUserNode(userId, this.options.nodeId);
    if (!this.options.enablePresence || (await this.connectedElsewhere(userId))) return;
    await this.publish(userId, 'offline');
  }

  private async connectedElsewhere(userId: string): Promise<boolean> {
    const nodes = (await this.presenceStore.userNodes(userId)).filter((n) => n !== this.options.nodeId);
    if (nodes.length === 0) return false;
    const live = new Set((await this.nodes.listNodes()).map((n) => n.nodeId));
    return nodes.some((n) => live.has(n));
  }

  /**
   * A node that stopped heartbeating is dead: one surviving node (whoever takes
   * the reap counter first) marks its users offline unless they are connected
   * elsewhere, and stops their typing, telling their room-mates.
   */
  async reapDeadNodes(): Promise<string[]> {
    const live = new Set((await this.nodes.listNodes()).map((n) => n.nodeId));
    const dead = [...this.knownNodes].filter((n) => !live.has(n) && n !== this.options.nodeId);
    this.knownNodes = live;
    for (const nodeId of dead) {
      const lockTtl = this.options.nodeTimeout * 3000;
      if ((await this.counters.increment(`reap:${nodeId}`, 1, lockTtl)) !== 1) continue;
      this.logger.warn(`node ${nodeId} stopped heartbeating: clearing its users' presence and typing`);
      for (const userId of await this.presenceStore.nodeUsers(nodeId)) {
        await this.presenceStore.removeUserNode(userId, nodeId);
        await this.presenceStore.setUserConnections(userId, nodeId, 0);
        if (this.local.has(userId) || (await this.connectedElsewhere(userId))) continue;
        await this.typing.stopEverywhere(userId, await this.roomStore.userRooms(userId));
        if (this.options.enablePresence) await this.publish(userId, 'offline');
      }
    }
    return dead;
  }

  /**
   * presence_cleanup: idle users go away; live users' records are refreshed
   * once past half their TTL (not at every sweep: with the defaults, once
   * every third sweep). One pass over this node's users (in memory, no
   * backend call) per sweep; backend calls only for the users that change
   * or are due, one per user (never per connection).
   */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      const idleBefore = now - this.options.presenceTimeout * 1000;
      const refreshBefore = now - (this.ttl * 1000) / 2;
      for (const [userId, state] of this.local) {
        if (!this.fanout.registry.hasUser(userId)) continue;
        if (state.status === 'online' && !state.manual && state.lastActivity < idleBefore) {
          state.status = 'away';
          await this.publish(userId, 'away');
        } else if (state.storedAt <= refreshBefore) {
          const record: PresenceRecord = { userId, status: state.status, lastSeen: new Date().toISOString() };
          if (state.custom !== undefined) record.custom = state.custom;
          state.storedAt = Date.now();
          await this.presenceStore.setPresence(record, this.ttl);
        }
      }
    } finally {
      this.sweeping = false;
    }
  }
}
