import { Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { StreamingLogger } from '../common/streaming-logger';
import { StreamingOptions } from '../config/streaming-options.interface';
import { ConnectionRegistry } from '../connections/connection-registry';
import { StreamingEvents } from '../events/streaming-events';
import type { Broker, NodeDirectory, PresenceStore, RoomStore } from '../interfaces';
import { moderationEntryToWire } from '../protocol/wire';
import { ADMIN_MODERATION_TOPIC } from '../interfaces/broker.interface';
import { StreamingManager } from '../streaming-manager.service';
import {
  InjectBroker,
  InjectNodeDirectory,
  InjectPresenceStore,
  InjectRoomStore,
  InjectStreamingOptions,
} from '../streaming.constants';
import type {
  AdminConnections,
  AdminModerationEntry,
  AdminNode,
  AdminOverview,
  AdminRoom,
  AdminRooms,
} from './admin-console.types';

/** Rooms counted per listing (members and seq are read for each). */
export const ADMIN_MAX_ROOMS = 500;
/** Rows of a connection listing. */
export const ADMIN_MAX_ROWS = 500;
/** Moderation actions kept. */
export const ADMIN_MODERATION_SIZE = 100;

/** A room's message rate from two readings of its last seq at least a second apart. */
class RoomRates {
  private readonly last = new Map<string, { at: number; seq: number; rate: number | null }>();

  observe(roomId: string, seq: number, now: number): number | null {
    const prev = this.last.get(roomId);
    if (prev && now - prev.at < 1000) return prev.rate;
    const rate = prev ? Math.max(0, (seq - prev.seq) / ((now - prev.at) / 1000)) : null;
    this.last.set(roomId, { at: now, seq, rate: rate === null ? null : Math.round(rate * 100) / 100 });
    return this.last.get(roomId)!.rate;
  }

  /** Forget rooms not in the last listing (the map stays as large as one listing). */
  keepOnly(roomIds: ReadonlySet<string>): void {
    for (const id of this.last.keys()) if (!roomIds.has(id)) this.last.delete(id);
  }
}

/**
 * What the admin console shows (`routes.admin`): nodes from the node
 * directory (heartbeats, connections, message rates), rooms with member
 * counts and message rates, this node's connections and the users online on
 * every node, disconnects through {@link StreamingManager}, and the latest
 * moderation actions of the cluster (heard since this node started).
 */
@Injectable()
export class AdminConsoleService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new StreamingLogger('streaming.admin');
  private readonly rates = new RoomRates();
  private readonly moderationLog: AdminModerationEntry[] = [];
  private stopListening: (() => void) | null = null;

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    @InjectNodeDirectory() private readonly nodes: NodeDirectory,
    @InjectRoomStore() private readonly roomStore: RoomStore,
    @InjectBroker() private readonly broker: Broker,
    @InjectPresenceStore() private readonly presence: PresenceStore,
    private readonly registry: ConnectionRegistry,
    private readonly manager: StreamingManager,
    private readonly events: StreamingEvents,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Every node tells every node (itself included) about the actions taken on it.
    await this.broker.subscribe(ADMIN_MODERATION_TOPIC, (payload) => this.remember(payload));
    this.stopListening = this.events.on('moderation', ({ entry }) => {
      this.broker
        .publish(ADMIN_MODERATION_TOPIC, JSON.stringify(moderationEntryToWire(entry)))
        .catch((err: unknown) => this.logger.warn(`moderation feed publish failed: ${String(err)}`));
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopListening?.();
    await this.broker.unsubscribe(ADMIN_MODERATION_TOPIC).catch(() => undefined);
  }

  private remember(payload: string): void {
    try {
      const entry = JSON.parse(payload) as AdminModerationEntry;
      this.moderationLog.push(entry);
      if (this.moderationLog.length > ADMIN_MODERATION_SIZE) this.moderationLog.shift();
    } catch {
      this.logger.warn('ignored a malformed moderation feed entry');
    }
  }

  /** The cluster: live nodes (this one with its current figures) and totals. */
  async overview(): Promise<AdminOverview> {
    const [stats, listed] = await Promise.all([this.manager.getStats(), this.nodes.listNodes()]);
    const now = Date.now();
    const nodes: AdminNode[] = listed.map((n) => {
      const self = n.nodeId === this.options.nodeId;
      return {
        node_id: n.nodeId,
        self,
        region: n.region ?? null,
        address: n.address ?? null,
        started_at: n.startedAt,
        last_heartbeat: n.lastHeartbeat,
        heartbeat_age_s: Math.max(0, Math.round((now - Date.parse(n.lastHeartbeat)) / 100) / 10),
        connections: self ? stats.active_connections : n.connections,
        messages_per_second: self ? stats.messages_per_second : (n.messagesPerSecond ?? null),
        total_messages: self ? stats.total_messages : (n.totalMessages ?? null),
      };
    });
    if (!nodes.some((n) => n.self)) {
      // Not registered yet (or the directory lost it): still show this node.
      nodes.push({
        node_id: stats.node_id,
        self: true,
        region: this.options.region || null,
        address: this.options.advertiseUrl || null,
        started_at: new Date(Date.now() - stats.uptime_s * 1000).toISOString(),
        last_heartbeat: null,
        heartbeat_age_s: null,
        connections: stats.active_connections,
        messages_per_second: stats.messages_per_second,
        total_messages: stats.total_messages,
      });
    }
    nodes.sort((a, b) => a.node_id.localeCompare(b.node_id));
    return {
      node_id: stats.node_id,
      backend: stats.backend,
      time: new Date(now).toISOString(),
      node: stats,
      nodes,
      totals: {
        nodes: nodes.length,
        connections: nodes.reduce((sum, n) => sum + n.connections, 0),
        rooms: stats.total_rooms,
        messages_per_second:
          Math.round(nodes.reduce((sum, n) => sum + (n.messages_per_second ?? 0), 0) * 100) / 100,
      },
    };
  }

  /** Rooms by member count (the first {@link ADMIN_MAX_ROOMS} the store lists are counted), with message rates. */
  async rooms(limit = 100): Promise<AdminRooms> {
    const all = await this.roomStore.listRooms();
    const counted = all.slice(0, ADMIN_MAX_ROOMS);
    const rows: AdminRoom[] = [];
    const now = Date.now();
    for (let i = 0; i < counted.length; i += 50) {
      const chunk = counted.slice(i, i + 50);
      const figures = await Promise.all(
        chunk.map((r) => Promise.all([this.roomStore.countMembers(r.id), this.broker.latestSeq(r.id)])),
      );
      chunk.forEach((r, j) => {
        const [members, seq] = figures[j];
        rows.push({
          id: r.id,
          name: r.name,
          kind: r.kind ?? 'room',
          private: r.private,
          members,
          local_connections: this.registry.roomConnections(r.id).size,
          last_seq: seq,
          messages_per_second: this.rates.observe(r.id, seq, now),
          created_at: r.createdAt,
        });
      });
    }
    this.rates.keepOnly(new Set(rows.map((r) => r.id)));
    rows.sort((a, b) => b.members - a.members || b.last_seq - a.last_seq || a.id.localeCompare(b.id));
    return { total: all.length, counted: counted.length, rooms: rows.slice(0, Math.max(1, limit)) };
  }

  /**
   * This node's connections and the users with connections on each live node
   * (at most {@link ADMIN_MAX_ROWS} of each); `user` narrows both to one user.
   */
  async connections(user?: string): Promise<AdminConnections> {
    const local: AdminConnections['local'] = [];
    const source = user ? this.registry.userConnections(user) : this.registry.all();
    for (const c of source) {
      if (local.length >= ADMIN_MAX_ROWS) break;
      local.push({
        id: c.id,
        user_id: c.userId,
        name: c.identity.name ?? null,
        anonymous: c.identity.anonymous,
        transport: c.transport.kind,
        codec: c.codec,
        connected_at: new Date(c.connectedAt).toISOString(),
        rooms: c.rooms.size,
        queued: c.queued,
      });
    }
    const live = (await this.nodes.listNodes()).map((n) => n.nodeId);
    if (!live.includes(this.options.nodeId)) live.push(this.options.nodeId);
    const perUser = new Map<string, Set<string>>();
    let truncated = local.length >= ADMIN_MAX_ROWS;
    if (user) {
      const counts = await this.presence.userConnections(user);
      const nodes = new Set(Object.keys(counts).filter((node) => counts[node] > 0 && live.includes(node)));
      // A single node's store may not count connections: this node's registry does.
      if (this.registry.hasUser(user)) nodes.add(this.options.nodeId);
      if (nodes.size) perUser.set(user, nodes);
    } else {
      for (const nodeId of live) {
        for (const u of await this.presence.nodeUsers(nodeId)) {
          const nodes = perUser.get(u);
          if (nodes) nodes.add(nodeId);
          else if (perUser.size < ADMIN_MAX_ROWS) perUser.set(u, new Set([nodeId]));
          else truncated = true;
        }
      }
    }
    const users = [...perUser.entries()]
      .map(([user_id, nodes]) => ({
        user_id,
        nodes: [...nodes].sort(),
        local_connections: this.registry.userConnections(user_id).size,
      }))
      .sort((a, b) => a.user_id.localeCompare(b.user_id));
    return { node_id: this.options.nodeId, local, users, truncated };
  }

  /** Close every connection of a user on every node (4403), as the server API does. */
  async disconnectUser(userId: string, reason?: string): Promise<{ disconnected: number | null }> {
    const disconnected = await this.manager.disconnectUser(
      userId,
      reason || 'disconnected by an administrator',
    );
    this.logger.log(`disconnected ${userId} (${disconnected ?? 'unknown'} connection(s))`);
    return { disconnected };
  }

  /** The latest moderation actions of the cluster, newest first. */
  moderation(limit = ADMIN_MODERATION_SIZE): AdminModerationEntry[] {
    return this.moderationLog.slice(-Math.max(1, limit)).reverse();
  }
}
