import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { StreamingLogger } from '../common/streaming-logger';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingMetricsService } from '../metrics/streaming-metrics.service';
import { encodeEnvelope } from '../protocol/envelope';
import { Connection, SendLimits } from './connection';
import { ConnectionRegistry } from './connection-registry';
import { TickFlushScheduler } from './flush-scheduler';
import { InjectBroker, InjectRoomStore, InjectStreamingOptions } from '../streaming.constants';
import { Broker, PUBLIC_ROOMS_TOPIC, RoomStore, roomTopic, userTopic } from '../interfaces';
import { StreamingHub } from './hub';

/** Routing instructions that travel in front of an envelope on the bus. */
export interface BusHeader {
  /** Do not deliver to this user's connections. */
  exceptUser?: string;
  /** User topic: the user joined this room; index their connections before delivery. */
  join?: string;
  /** User topic: the user left this room; unindex their connections after delivery. */
  leave?: string;
  /** The same event published on several room topics: each connection gets it once. */
  dedupe?: string;
  /** Node that published it (and delivered it to its own connections already). */
  origin?: string;
  /** User topic: close the user's connections with this code and reason instead of delivering. */
  close?: { code: number; reason: string };
}

/** Bus payload: an envelope, optionally preceded by `#<header JSON>\n`. */
export function encodeBusPayload(envelope: string, header?: BusHeader): string {
  return header ? `#${JSON.stringify(header)}\n${envelope}` : envelope;
}

export function decodeBusPayload(payload: string): { header?: BusHeader; envelope: string } {
  if (payload.charCodeAt(0) !== 35 /* # */) return { envelope: payload };
  const nl = payload.indexOf('\n');
  return { header: JSON.parse(payload.slice(1, nl)) as BusHeader, envelope: payload.slice(nl + 1) };
}

/**
 * This node's fan-out: keeps one backend subscription per room and per user
 * that has local connections, and delivers each bus payload, serialized once,
 * to the local connections it concerns.
 */
@Injectable()
export class FanoutService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new StreamingLogger('streaming.manager.fanout');
  readonly scheduler: TickFlushScheduler;
  /** Outbound flow control of every connection of this node. */
  readonly limits: SendLimits;

  constructor(
    readonly registry: ConnectionRegistry,
    @InjectBroker() private readonly broker: Broker,
    private readonly hub: StreamingHub,
    @InjectRoomStore() private readonly roomStore: RoomStore,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly metrics: StreamingMetricsService,
  ) {
    this.limits = sendLimitsOf(options);
    // Past a quarter of the budget in the socket's own buffer, frames wait in the
    // connection's queue (a reference to the shared envelope, not a copy).
    this.scheduler = new TickFlushScheduler(Math.max(this.limits.budgetBytes / 4, options.maxMessageSize));
  }

  /** Every node hears the changes to the public room list (`room_listed`, `room_unlisted`). */
  async onApplicationBootstrap(): Promise<void> {
    if (!this.options.enableRooms || !this.broker.distributed) return;
    await this.hub.retain(PUBLIC_ROOMS_TOPIC, (p) => this.onEveryonePayload(p));
  }

  onModuleDestroy(): void {
    this.scheduler.dispose();
  }

  /**
   * Publish an event to every connection of every node (the public room list
   * changes; never per message): O(connections of a node) on each node.
   */
  async publishToEveryone(type: string, data: unknown): Promise<void> {
    const envelope = encodeEnvelope(type, data);
    this.deliver(this.registry.all(), envelope);
    if (this.broker.distributed) {
      await this.broker.publish(
        PUBLIC_ROOMS_TOPIC,
        encodeBusPayload(envelope, { origin: this.options.nodeId }),
      );
    }
  }

  private onEveryonePayload(payload: string): void {
    const { header, envelope } = decodeBusPayload(payload);
    if (header?.origin === this.options.nodeId) return;
    this.deliver(this.registry.all(), envelope);
  }

  /** Register a new connection and index it under the rooms of its user. */
  async attach(conn: Connection): Promise<void> {
    const first = this.registry.add(conn);
    this.metrics.connections.inc({ transport: conn.transport.kind });
    this.metrics.connectionsTotal.inc({ transport: conn.transport.kind });
    if (first) await this.hub.retain(userTopic(conn.userId), (p) => this.onUserPayload(conn.userId, p));
    if (this.options.enableRooms) {
      const rooms = await this.roomStore.userRooms(conn.userId);
      for (const roomId of rooms) await this.indexRoom(conn, roomId);
    }
  }

  /** Remove a connection; drops subscriptions nobody on this node needs any more. */
  async detach(conn: Connection): Promise<{ lastOfUser: boolean }> {
    const { removed, lastOfUser, emptiedRooms } = this.registry.remove(conn);
    if (!removed) return { lastOfUser: false };
    this.metrics.connections.dec({ transport: conn.transport.kind });
    for (const roomId of emptiedRooms) await this.hub.release(roomTopic(roomId));
    if (lastOfUser) await this.hub.release(userTopic(conn.userId));
    return { lastOfUser };
  }

  private async indexRoom(conn: Connection, roomId: string): Promise<void> {
    if (this.registry.addToRoom(conn, roomId)) {
      await this.hub.retain(roomTopic(roomId), (p) => this.onRoomPayload(roomId, p));
    }
  }

  /** Index every local connection of `userId` under `roomId` (after a join anywhere in the cluster). */
  async indexUserInRoom(userId: string, roomId: string): Promise<void> {
    for (const conn of [...this.registry.userConnections(userId)]) await this.indexRoom(conn, roomId);
  }

  /** Unindex every local connection of `userId` from `roomId`. */
  async unindexUserFromRoom(userId: string, roomId: string): Promise<void> {
    let emptied = false;
    for (const conn of [...this.registry.userConnections(userId)]) {
      if (this.registry.removeFromRoom(conn, roomId)) emptied = true;
    }
    if (emptied) await this.hub.release(roomTopic(roomId));
  }

  /**
   * Publish an event to every member connection of a room, on every node.
   * This node's own connections get it at once (so a request's events reach
   * local peers before its ack); other nodes through the backend, which skips
   * the echo back to this node. Chat messages do not come this way: they are
   * published by the backend in the same step that gives them their seq.
   */
  async publishToRoom(roomId: string, type: string, data: unknown, header?: BusHeader): Promise<void> {
    const envelope = encodeEnvelope(type, data);
    this.deliverRoom(roomId, envelope, header);
    if (this.broker.distributed) {
      await this.broker.publish(
        roomTopic(roomId),
        encodeBusPayload(envelope, { ...header, origin: this.options.nodeId }),
      );
    }
  }

  /** Publish an event to every connection of a user, on every node (local ones first, as above). */
  async publishToUser(userId: string, type: string, data: unknown, header?: BusHeader): Promise<void> {
    const envelope = encodeEnvelope(type, data);
    await this.deliverUser(userId, envelope, header);
    if (this.broker.distributed) {
      await this.broker.publish(
        userTopic(userId),
        encodeBusPayload(envelope, { ...header, origin: this.options.nodeId }),
      );
    }
  }

  /**
   * Pacing for server-side senders: settles once what was sent so far is
   * written and every reader of `conns` has room again (at most half its
   * budget unread). A reader that stopped is closed within `write_timeout`,
   * which bounds the wait. Request handling needs none of this: each
   * connection's requests already wait for its own reader.
   */
  async writable(conns: Iterable<Connection>): Promise<void> {
    await this.scheduler.flushed();
    let waits: Array<Promise<void>> | null = null;
    for (const c of conns) {
      const w = c.whenWritable();
      if (w) (waits ??= []).push(w);
    }
    if (waits) await Promise.all(waits);
  }

  /** {@link writable} for this node's member connections of a room. */
  roomWritable(roomId: string): Promise<void> {
    return this.writable(this.registry.roomConnections(roomId));
  }

  /** Deliver one serialized envelope to a set of local connections (through the hub's loop). */
  deliver(conns: Iterable<Connection>, envelope: string, exceptUser?: string): number {
    return this.hub.deliver(envelope, (send) => {
      for (const c of conns) if (exceptUser === undefined || c.userId !== exceptUser) send(c);
    });
  }

  /** Deliver a room event to this node's member connections (serialized once, written as is). */
  private deliverRoom(roomId: string, envelope: string, header?: BusHeader): void {
    const except = header?.exceptUser;
    const dedupe = header?.dedupe;
    this.hub.deliver(envelope, (send) => {
      for (const c of this.registry.roomConnections(roomId)) {
        if (except !== undefined && c.userId === except) continue;
        if (dedupe !== undefined && !c.firstSight(dedupe)) continue;
        if (c.holdIfHeld(roomId, envelope)) continue;
        send(c);
      }
    });
  }

  /**
   * Close every connection of a user, on every node, with `code` and
   * `reason` (queued frames are flushed first). Returns how many were open
   * on this node.
   */
  async closeUser(userId: string, code: number, reason: string): Promise<number> {
    const local = this.closeLocal(userId, { code, reason });
    if (this.broker.distributed) {
      await this.broker.publish(
        userTopic(userId),
        encodeBusPayload('', { close: { code, reason }, origin: this.options.nodeId }),
      );
    }
    return local;
  }

  private closeLocal(userId: string, close: { code: number; reason: string }): number {
    const conns = [...this.registry.userConnections(userId)];
    for (const c of conns) c.close(close.code, close.reason, true);
    return conns.length;
  }

  /** Deliver a user event to this node's connections of the user, applying its membership change. */
  private async deliverUser(userId: string, envelope: string, header?: BusHeader): Promise<void> {
    if (header?.close) {
      this.closeLocal(userId, header.close);
      return;
    }
    if (header?.join) await this.indexUserInRoom(userId, header.join);
    this.deliver(this.registry.userConnections(userId), envelope);
    if (header?.leave) await this.unindexUserFromRoom(userId, header.leave);
  }

  private onRoomPayload(roomId: string, payload: string): void {
    this.metrics.busReceived.inc({ kind: 'room' });
    const { header, envelope } = decodeBusPayload(payload);
    if (header?.origin === this.options.nodeId) return; // delivered locally when published
    this.deliverRoom(roomId, envelope, header);
  }

  private onUserPayload(userId: string, payload: string): void {
    this.metrics.busReceived.inc({ kind: 'user' });
    const { header, envelope } = decodeBusPayload(payload);
    if (header?.origin === this.options.nodeId) return;
    this.deliverUser(userId, envelope, header).catch((err: unknown) =>
      this.logger.error(`user event for ${userId} failed: ${String(err)}`),
    );
  }
}

/**
 * The byte budget and write timeout of every connection: `send_queue_bytes`
 * (unset: `send_queue_size` KiB), closed at once past four times the budget.
 */
export function sendLimitsOf(options: StreamingOptions): SendLimits {
  const budgetBytes = options.sendQueueBytes > 0 ? options.sendQueueBytes : options.sendQueueSize * 1024;
  return { budgetBytes, hardCapBytes: budgetBytes * 4, writeTimeoutMs: options.writeTimeout * 1000 };
}
