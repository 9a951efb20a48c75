import { StreamingLogger } from '../common/streaming-logger';
import type { IncomingMessage } from 'node:http';
import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingMetricsService } from '../metrics/streaming-metrics.service';
import { PresenceService } from '../presence/presence.service';
import { StreamingHooks } from '../hooks/streaming-hooks.service';
import { StreamingError } from '../protocol/streaming-error';
import { StreamingAuthService } from '../security/auth.service';
import { TypingService } from '../typing/typing.service';
import { Connection, ConnectionTransport } from './connection';
import { encodeEnvelope } from '../protocol/envelope';
import { FanoutService } from './fanout.service';
import { ExpiryWheel } from './expiry-wheel';
import { ChannelService } from '../channels/channel.service';
import { ConnectionEvent, StreamingEvents } from '../events/streaming-events';
import { InjectNodeDirectory, InjectPresenceStore, InjectStreamingOptions } from '../streaming.constants';
import { NodeDirectory, PresenceStore } from '../interfaces';
import type { ConnectionIdentity } from '../interfaces';

/** How long an admitted connection that never opened (a failed upgrade) holds its slot. */
const ADMISSION_HOLD_MS = 10_000;

/**
 * Life of a connection, shared by every transport: admission (auth and
 * limits), the `connected` envelope, indexing, presence, and clean-up.
 */
@Injectable()
export class ConnectionLifecycleService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new StreamingLogger('streaming.manager');
  private expiryTimer: NodeJS.Timeout | null = null;
  /**
   * Connections whose token expires (with `validate_on_message`), by expiry
   * time: the timer's tick touches only those due, not every connection.
   */
  private readonly expiring = new ExpiryWheel<Connection>(1000);
  /** Admitted connections not opened yet, per user: when each was admitted. */
  private readonly admitting = new Map<string, number[]>();
  private lastPrune = Date.now();

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly auth: StreamingAuthService,
    private readonly fanout: FanoutService,
    private readonly presence: PresenceService,
    private readonly typing: TypingService,
    private readonly channels: ChannelService,
    private readonly events: StreamingEvents,
    private readonly metrics: StreamingMetricsService,
    @InjectPresenceStore() private readonly presenceStore: PresenceStore,
    @InjectNodeDirectory() private readonly nodes: NodeDirectory,
    private readonly hooks: StreamingHooks,
  ) {}

  onModuleInit(): void {
    if (this.options.auth.validateOnMessage) {
      this.expiryTimer = setInterval(() => this.closeExpired(), 1000);
      this.expiryTimer.unref();
    }
  }

  onModuleDestroy(): void {
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.expiring.clear();
  }

  /** Connections of one transport on this node. */
  *connections(kind?: ConnectionTransport['kind']): IterableIterator<Connection> {
    for (const c of this.fanout.registry.all()) if (!kind || c.transport.kind === kind) yield c;
  }

  /** Authenticate a connection attempt and check the connection limits. */
  async admit(req: IncomingMessage, transport: 'ws' | 'sse' = 'ws'): Promise<ConnectionIdentity> {
    const identity = await this.hooks.connect({
      identity: await this.auth.authenticate(req),
      transport,
      url: req.url ?? '',
      headers: req.headers,
    });
    const registry = this.fanout.registry;
    if (this.options.maxConnections > 0 && registry.size >= this.options.maxConnections) {
      throw new StreamingError('limit_exceeded', 'this server accepts no more connections');
    }
    if (identity.anonymous && registry.anonymousCount >= this.options.maxAnonymousConnections) {
      throw new StreamingError('limit_exceeded', 'too many anonymous connections');
    }
    const userId = identity.userId;
    const tooMany = (): StreamingError =>
      new StreamingError(
        'limit_exceeded',
        `at most ${this.options.maxConnectionsPerUser} connections per user`,
      );
    if (this.openCount(userId) >= this.options.maxConnectionsPerUser) throw tooMany();
    // Counted before the backend answers, so concurrent attempts on this node see each other.
    if (Date.now() - this.lastPrune >= ADMISSION_HOLD_MS) this.pruneAdmitting();
    const held = this.admitting.get(userId) ?? [];
    const admittedAt = Date.now();
    held.push(admittedAt);
    this.admitting.set(userId, held);
    if (this.presenceStore.distributed && !(await this.claimSlot(userId))) {
      this.release(userId, admittedAt);
      throw tooMany();
    }
    return identity;
  }

  /** The user's connections on this node, the admitted ones that did not open yet included. */
  private openCount(userId: string): number {
    const held = this.admitting.get(userId);
    if (held) {
      const fresh = held.filter((t) => Date.now() - t < ADMISSION_HOLD_MS);
      if (fresh.length > 0) this.admitting.set(userId, fresh);
      else this.admitting.delete(userId);
    }
    return this.fanout.registry.userConnections(userId).size + (this.admitting.get(userId)?.length ?? 0);
  }

  /** Forget admissions older than the hold (upgrades that failed after admission), once per hold period: the map stays bounded. */
  private pruneAdmitting(): void {
    this.lastPrune = Date.now();
    for (const userId of [...this.admitting.keys()]) this.openCount(userId);
  }

  private release(userId: string, admittedAt?: number): void {
    const held = this.admitting.get(userId);
    if (!held) return;
    const i = admittedAt === undefined ? 0 : held.indexOf(admittedAt);
    if (i >= 0) held.splice(i, 1);
    if (held.length === 0) this.admitting.delete(userId);
  }

  /**
   * `max_connections_per_user` over every node: records this node's count in
   * the backend unless the total would pass the limit. Counts left by nodes
   * that died (not reaped yet) are dropped and asked again. A backend that
   * does not answer leaves the limit to this node alone.
   */
  private async claimSlot(userId: string): Promise<boolean> {
    const max = this.options.maxConnectionsPerUser;
    const nodeId = this.options.nodeId;
    try {
      if (await this.presenceStore.setUserConnections(userId, nodeId, this.openCount(userId), { max }))
        return true;
      const live = new Set((await this.nodes.listNodes()).map((n) => n.nodeId));
      const deadNodes = Object.keys(await this.presenceStore.userConnections(userId)).filter(
        (n) => n !== nodeId && !live.has(n),
      );
      if (deadNodes.length === 0) return false;
      return await this.presenceStore.setUserConnections(userId, nodeId, this.openCount(userId), {
        max,
        deadNodes,
      });
    } catch (err) {
      this.logger.warn(
        `connections of ${userId} on other nodes unknown (${String(err)}): counting this node only`,
      );
      return true;
    }
  }

  /** Tell the backend how many connections the user has here now (after a close). */
  private async syncSlots(userId: string): Promise<void> {
    if (!this.presenceStore.distributed) return;
    await this.presenceStore.setUserConnections(userId, this.options.nodeId, this.openCount(userId));
  }

  create(id: string, identity: ConnectionIdentity, transport: ConnectionTransport): Connection {
    return new Connection(
      id,
      identity,
      transport,
      this.fanout.scheduler,
      this.fanout.limits,
      (c, reason) => this.slowConsumer(c, reason),
      (c) => this.trackExpiry(c),
    );
  }

  /** Send `connected`, index the connection under its user's rooms, mark the user online. */
  async open(conn: Connection): Promise<void> {
    // Subscribed to the user's rooms first: nothing published after `connected` can be missed.
    // Its admission slot becomes a registered connection in the same step (attach registers it at once).
    this.release(conn.userId);
    await this.fanout.attach(conn);
    this.trackExpiry(conn);
    conn.sendFirst(
      encodeEnvelope('connected', {
        connection_id: conn.id,
        user_id: conn.userId,
        session_id: conn.sessionId,
        node_id: this.options.nodeId,
        ping_interval_ms: this.options.pingInterval * 1000,
        transport: conn.transport.kind,
      }),
    );
    if (conn.closed) {
      await this.closed(conn);
      return;
    }
    await this.presence.connected(conn.userId);
    this.events.emit('connect', this.connectionEvent(conn));
  }

  private connectionEvent(conn: Connection): ConnectionEvent {
    return {
      connectionId: conn.id,
      userId: conn.userId,
      identity: conn.identity,
      transport: conn.transport.kind,
    };
  }

  /** The transport closed: unindex, and if it was the user's last connection, stop typing and go offline. */
  async closed(conn: Connection): Promise<void> {
    if (conn.closed && !this.fanout.registry.get(conn.id)) return;
    conn.markClosed();
    this.expiring.delete(conn);
    this.events.emit('disconnect', this.connectionEvent(conn));
    await this.channels.unsubscribeAll(conn);
    try {
      const { lastOfUser } = await this.fanout.detach(conn);
      await this.syncSlots(conn.userId);
      if (lastOfUser) {
        await this.typing.clearUser(conn.userId);
        this.presence.disconnected(conn.userId);
      }
    } catch (err) {
      this.logger.warn(`clean-up of connection ${conn.id} failed: ${String(err)}`);
    }
  }

  private slowConsumer(conn: Connection, reason: string): void {
    this.metrics.queueDrops.inc();
    this.logger.warn(`closing slow consumer ${conn.id} (user ${conn.userId}): ${reason}`);
    conn.close(1013, 'slow consumer');
  }

  /** Index (or re-index, after `refresh_token`) when the connection's token expires. */
  private trackExpiry(conn: Connection): void {
    if (!this.expiryTimer) return; // validate_on_message is off: tokens are checked at connect only
    const at = conn.identity.expiresAt;
    if (conn.closed || at === undefined) this.expiring.delete(conn);
    else this.expiring.set(conn, at);
  }

  /** Once a second: close the connections whose token expired since the last tick (O(expiring), not O(connections)). */
  private closeExpired(): void {
    const now = Date.now();
    for (const c of this.expiring.expire(now)) {
      if (c.closed) continue;
      const at = c.identity.expiresAt;
      if (at !== undefined && at <= now) c.close(4401, 'token expired', true);
      else this.trackExpiry(c); // moved by a refresh the wheel did not hear of
    }
  }
}
