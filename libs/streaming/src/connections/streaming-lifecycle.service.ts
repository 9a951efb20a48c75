import type { IncomingMessage } from 'node:http';
import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingMetrics } from '../metrics/streaming-metrics.service';
import { PresenceService } from '../presence/presence.service';
import { StreamingError } from '../protocol/streaming-error';
import { StreamingAuthService } from '../security/auth.service';
import { InjectStreamingOptions } from '../streaming.module-definition';
import { TypingService } from '../typing/typing.service';
import { Connection, ConnectionIdentity, ConnectionTransport } from './connection';
import { encodeEnvelope } from '../protocol/envelope';
import { FanoutService } from './fanout.service';
import { ChannelService } from '../channels/channel.service';
import { ConnectionEvent, StreamingEvents } from '../events/streaming-events';

/**
 * Life of a connection, shared by every transport: admission (auth and
 * limits), the `connected` envelope, indexing, presence, and clean-up.
 */
@Injectable()
export class StreamingLifecycle implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Streaming');
  private expiryTimer: NodeJS.Timeout | null = null;

  constructor(
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly auth: StreamingAuthService,
    private readonly fanout: FanoutService,
    private readonly presence: PresenceService,
    private readonly typing: TypingService,
    private readonly channels: ChannelService,
    private readonly events: StreamingEvents,
    private readonly metrics: StreamingMetrics,
  ) {}

  onModuleInit(): void {
    if (this.options.auth.validateOnMessage) {
      this.expiryTimer = setInterval(() => this.closeExpired(), 1000);
      this.expiryTimer.unref();
    }
  }

  onModuleDestroy(): void {
    if (this.expiryTimer) clearInterval(this.expiryTimer);
  }

  /** Connections of one transport on this node. */
  *connections(kind?: ConnectionTransport['kind']): IterableIterator<Connection> {
    for (const c of this.fanout.registry.all()) if (!kind || c.transport.kind === kind) yield c;
  }

  /** Authenticate a connection attempt and check the connection limits. */
  async admit(req: IncomingMessage): Promise<ConnectionIdentity> {
    const identity = await this.auth.authenticate(req);
    const registry = this.fanout.registry;
    if (this.options.maxConnections > 0 && registry.size >= this.options.maxConnections) {
      throw new StreamingError('limit_exceeded', 'this server accepts no more connections');
    }
    if (identity.anonymous && registry.anonymousCount >= this.options.maxAnonymousConnections) {
      throw new StreamingError('limit_exceeded', 'too many anonymous connections');
    }
    const open = registry.userConnections(identity.userId).size;
    if (open >= this.options.maxConnectionsPerUser) {
      throw new StreamingError(
        'limit_exceeded',
        `at most ${this.options.maxConnectionsPerUser} connections per user`,
      );
    }
    return identity;
  }

  create(id: string, identity: ConnectionIdentity, transport: ConnectionTransport): Connection {
    return new Connection(id, identity, transport, this.fanout.scheduler, this.fanout.limits, (c, reason) =>
      this.slowConsumer(c, reason),
    );
  }

  /** Send `connected`, index the connection under its user's rooms, mark the user online. */
  async open(conn: Connection): Promise<void> {
    // Subscribed to the user's rooms first: nothing published after `connected` can be missed.
    await this.fanout.attach(conn);
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
    this.events.emit('disconnect', this.connectionEvent(conn));
    await this.channels.unsubscribeAll(conn);
    try {
      const { lastOfUser } = await this.fanout.detach(conn);
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

  private closeExpired(): void {
    const now = Date.now();
    for (const c of this.fanout.registry.all()) {
      if (c.identity.expiresAt !== undefined && c.identity.expiresAt <= now)
        c.close(4401, 'token expired', true);
    }
  }
}
