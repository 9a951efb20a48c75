import { StreamingLogger } from '../common/streaming-logger';
import { StreamingEvents } from '../events/streaming-events';
import { randomBytes } from 'node:crypto';
import { Injectable, OnModuleDestroy, Optional } from '@nestjs/common';
import { StreamingOptions } from '../config/streaming-options.interface';
import { Connection } from '../connections/connection';
import { ConnectionRegistry } from '../connections/connection-registry';
import { encodeEnvelope } from '../protocol/envelope';
import { StreamingError } from '../protocol/streaming-error';
import { CreatorOnlyChannelAuthorizer } from './channel-authorizer';
import {
  ALL_CHANNELS_TOPIC,
  ChannelBusHeader,
  channelOwner,
  userToken,
  channelTopic,
  encodeChannelPayload,
} from './channel-bus';
import { ChannelFilters, compileFilters, validateFilters } from './channel-filters';
import { ChannelSubscriptions } from './channel-subscriptions';
import { InMemoryChannelStore, channelToWire } from './channel-store';
import { hasWildcard, patternMatches, validatePattern } from './channel-trie';
import {
  InjectBroker,
  InjectChannelAuthorizer,
  InjectChannelStore,
  InjectPresenceStore,
  InjectStreamingOptions,
} from '../streaming.constants';
import { Broker, PresenceStore } from '../interfaces';
import type {
  ChannelAction,
  ChannelActor,
  ChannelAuthorizer,
  ChannelRecord,
  ChannelStore,
  WireChannel,
} from '../interfaces';
import { ChannelUseTracker, SERVER_USE } from './channel-use';
import type {
  ChannelMessageEvent,
  ChannelStats,
  CreateChannelInput,
  PublishResult,
  SubscribeResult,
  UnsubscribeResult,
} from './channel.types';
import { StreamingHub } from '../connections/hub';
import { epochOf, isRecord, ownUserPattern, requireName, requireOwnNamespace } from './channel-rules';
export { ownUserPattern } from './channel-rules';
export type {
  ChannelMessageEvent,
  ChannelStats,
  CreateChannelInput,
  PublishResult,
  SubscribeResult,
  UnsubscribeResult,
} from './channel.types';

/** Type of the event a channel publish delivers. */
export const CHANNEL_MESSAGE_EVENT = 'channel_message';

/** Longest channel description. */
export const MAX_CHANNEL_DESCRIPTION = 2000;

/**
 * Pub/sub channels (PROTOCOL.md sections 4 and 8) on this node: the channel
 * registry, the subscriptions of local connections (patterns in a token
 * trie), and delivery of channel messages from the bus.
 *
 * Rules enforced here, for every transport and for server code alike:
 * - `enableChannels` off: every call fails with `feature_disabled`;
 * - invalid names, patterns or filters: `invalid_message`;
 * - more than `maxChannelsPerUser` subscriptions across a user's connections
 *   on this node: `limit_exceeded`;
 * - `user.<id>…`: only that user (or the server, publisher `null`) may
 *   publish there; a pattern starting with `user.` must name the subscriber
 *   literally as its second token (`user.*.x`, `user.>` are `forbidden`); and
 *   at delivery, `user.<id>…` channels reach only `<id>`'s connections, so
 *   wildcard-first patterns (`*.alice.x`, `>`) never leak them;
 * - private channels: subscribing by exact name, and publishing, need the
 *   {@link ChannelAuthorizer} (default: the creator only), else `forbidden`.
 *   Their messages reach only exact-name subscriptions authorized for that
 *   channel, never wildcard patterns.
 *
 * Delivery: one bus payload per topic (see `channel-bus.ts`), the envelope
 * serialized once by the publisher; each node matches it against its
 * {@link ChannelSubscriptions} and writes it through the hub's one loop.
 */
@Injectable()
export class ChannelService implements OnModuleDestroy {
  private readonly logger = new StreamingLogger('streaming.channels');
  private readonly subs: ChannelSubscriptions;
  /** Who uses which names, in the backend (the squatting guard of private channels). */
  private readonly uses: ChannelUseTracker;
  private readonly idPrefix = `${randomBytes(6).toString('base64url')}:`;
  private publishSeq = 0;
  private readonly store: ChannelStore;
  private readonly authorizer: ChannelAuthorizer;

  constructor(
    @InjectBroker() private readonly broker: Broker,
    @InjectPresenceStore() presence: PresenceStore,
    hub: StreamingHub,
    @InjectStreamingOptions() private readonly options: StreamingOptions,
    private readonly registry: ConnectionRegistry,
    @Optional() @InjectChannelStore() store?: ChannelStore,
    @Optional() @InjectChannelAuthorizer() authorizer?: ChannelAuthorizer,
    @Optional() private readonly events?: StreamingEvents,
  ) {
    this.store = store ?? new InMemoryChannelStore();
    this.authorizer = authorizer ?? new CreatorOnlyChannelAuthorizer();
    this.subs = new ChannelSubscriptions(hub);
    this.uses = new ChannelUseTracker(presence, this.authorizer, () => this.subs.exact());
  }

  // ---------------------------------------------------------------- registry

  /** Register a channel. `creator` null: created by the server. */
  async createChannel(creator: ChannelActor | null, input: CreateChannelInput): Promise<WireChannel> {
    this.ensureEnabled();
    const name = requireName(input?.name);
    if (input.private !== undefined && typeof input.private !== 'boolean') {
      throw new StreamingError('invalid_message', '"private" must be a boolean');
    }
    if (
      input.description !== undefined &&
      (typeof input.description !== 'string' || input.description.length > MAX_CHANNEL_DESCRIPTION)
    ) {
      throw new StreamingError(
        'invalid_message',
        `"description" must be a string of at most ${MAX_CHANNEL_DESCRIPTION} characters`,
      );
    }
    if (creator) {
      requireOwnNamespace(creator.userId, name, 'create');
      // The registry is bounded per user too: `max_channels_per_user` registered channels.
      const mine = (await this.store.list()).filter((c) => c.createdBy === creator.userId).length;
      if (mine >= this.options.maxChannelsPerUser) {
        throw new StreamingError(
          'limit_exceeded',
          `you registered ${mine} channels, the limit is ${this.options.maxChannelsPerUser}`,
        );
      }
    }
    const record: ChannelRecord = {
      name,
      private: input.private ?? false,
      createdBy: creator?.userId ?? null,
      createdAt: new Date().toISOString(),
    };
    if (input.description !== undefined) record.description = input.description;
    if (creator && record.private && channelOwner(name) === undefined) {
      await this.uses.requireMayMakePrivate(creator, record);
    }
    if (!(await this.store.create(record))) {
      throw new StreamingError('invalid_message', `channel ${name} already exists`);
    }
    return channelToWire(record);
  }

  /** A registered channel, or null. */
  async getChannel(name: string): Promise<WireChannel | null> {
    this.ensureEnabled();
    const c = await this.store.get(name);
    return c ? channelToWire(c) : null;
  }

  /**
   * Registered channels. With a `viewer`, only those the viewer could
   * subscribe to (public ones outside other users' `user.<id>` namespaces,
   * and private ones the authorizer allows).
   */
  async listChannels(viewer?: ChannelActor | null): Promise<WireChannel[]> {
    this.ensureEnabled();
    return this.visible(await this.store.list(), viewer);
  }

  /** Registered channels matching a pattern (same visibility as {@link listChannels}). */
  async findByPattern(pattern: string, viewer?: ChannelActor | null): Promise<WireChannel[]> {
    this.ensureEnabled();
    const reason = validatePattern(pattern);
    if (reason !== null) throw new StreamingError('invalid_message', reason);
    const all = await this.store.list();
    return this.visible(
      all.filter((c) => patternMatches(pattern, c.name)),
      viewer,
    );
  }

  /** Delete a registered channel: its creator or the server (`actor` null). Subscriptions stay. */
  async deleteChannel(actor: ChannelActor | null, name: string): Promise<void> {
    this.ensureEnabled();
    const record = await this.store.get(name);
    if (!record) throw new StreamingError('channel_not_found', `channel ${name} does not exist`);
    if (actor && record.createdBy !== actor.userId) {
      throw new StreamingError('forbidden', `only the creator may delete channel ${name}`);
    }
    await this.store.delete(name);
  }

  // ----------------------------------------------------------- subscriptions

  /**
   * Subscribe a connection to a channel name or pattern, with optional
   * filters. Subscribing again to the same pattern replaces its filters.
   */
  async subscribe(
    conn: Connection,
    pattern: string,
    filters?: Record<string, unknown>,
  ): Promise<SubscribeResult> {
    this.ensureEnabled();
    const reason = validatePattern(pattern);
    if (reason !== null) throw new StreamingError('invalid_message', reason);
    const asked = pattern;
    pattern = ownUserPattern(conn.userId, pattern);
    const filterReason = validateFilters(filters);
    if (filterReason !== null)
      throw new StreamingError('invalid_message', `invalid filters: ${filterReason}`);
    requireOwnNamespace(conn.userId, pattern, 'subscribe to');
    let grant: string | null = null;
    if (!hasWildcard(pattern)) {
      const record = await this.store.get(pattern);
      if (record?.private) {
        await this.requireAuthorized(conn.identity, record, 'subscribe');
        grant = epochOf(record);
      }
    }
    // Closed while we waited: the clean-up may already have run; index nothing.
    if (conn.closed) return { channel: asked };
    if (this.registry.get(conn.id) !== conn) {
      throw new Error(`connection ${conn.id} is not registered on this node`);
    }
    const filter =
      filters !== undefined && Object.keys(filters).length > 0
        ? compileFilters(filters as ChannelFilters)
        : null;

    const existing = this.subs.get(conn, pattern);
    try {
      if (existing) {
        await this.subs.replace(existing, filter, grant); // waits for an in-flight backend subscription
        return { channel: asked };
      }
      const used = this.subs.countOf(conn.userId);
      if (used >= this.options.maxChannelsPerUser) {
        throw new StreamingError(
          'limit_exceeded',
          `at most ${this.options.maxChannelsPerUser} channel subscriptions per user`,
        );
      }
      await this.subs.add(conn, pattern, filter, grant);
    } catch (err) {
      if (err instanceof StreamingError) throw err;
      this.logger.warn(`subscribing to ${pattern} failed: ${String(err)}`);
      throw new StreamingError('backend_unavailable', 'could not subscribe: the backend is unavailable');
    }
    if (!hasWildcard(pattern)) {
      await this.uses.subscribed(pattern, conn.userId);
    }
    return { channel: asked };
  }

  /** Remove one subscription of a connection (idempotent). */
  async unsubscribe(conn: Connection, pattern: string): Promise<UnsubscribeResult> {
    this.ensureEnabled();
    if (typeof pattern !== 'string' || pattern.length === 0) {
      throw new StreamingError('invalid_message', '"channel" must be a non-empty string');
    }
    const removed = await this.subs.remove(conn, ownUserPattern(conn.userId, pattern));
    return { channel: pattern, removed };
  }

  /** Remove every subscription of a connection (call when it closes). Never throws; returns how many. */
  unsubscribeAll(conn: Connection): Promise<number> {
    return this.subs.removeAll(conn);
  }

  // ----------------------------------------------------------------- publish

  /**
   * Publish to a channel, on every node. `publisher` null: the server
   * (allowed everywhere, `publisher_id` null). The envelope is serialized
   * once; one payload goes to the channel's topic and one to `chan:~all`.
   */
  async publish(
    publisher: ChannelActor | null,
    channel: string,
    data: Record<string, unknown>,
    metadata?: Record<string, unknown>,
  ): Promise<PublishResult> {
    this.ensureEnabled();
    const name = requireName(channel);
    if (!isRecord(data)) throw new StreamingError('invalid_message', '"data" must be a JSON object');
    if (metadata !== undefined && !isRecord(metadata)) {
      throw new StreamingError('invalid_message', '"metadata" must be a JSON object');
    }
    if (publisher) requireOwnNamespace(publisher.userId, name, 'publish to');
    const record = await this.store.get(name);
    if (record?.private && publisher) await this.requireAuthorized(publisher, record, 'publish');

    const timestamp = new Date().toISOString();
    const event: ChannelMessageEvent = {
      channel: name,
      data,
      metadata: metadata ?? {},
      publisher_id: publisher?.userId ?? null,
      timestamp,
    };
    if (!record?.private) await this.uses.published(name, publisher?.userId ?? SERVER_USE);
    const header: ChannelBusHeader = { i: this.idPrefix + (++this.publishSeq).toString(36), c: name };
    if (record?.private) header.p = epochOf(record);
    const payload = encodeChannelPayload(header, encodeEnvelope(CHANNEL_MESSAGE_EVENT, event));
    try {
      await Promise.all([
        this.broker.publish(channelTopic(name), payload),
        this.broker.publish(ALL_CHANNELS_TOPIC, payload),
      ]);
    } catch (err) {
      this.logger.warn(`publishing to channel ${name} failed: ${String(err)}`);
      throw new StreamingError('backend_unavailable', 'could not publish: the backend is unavailable');
    }
    this.events?.emit('channel_message', {
      channel: name,
      data,
      metadata: event.metadata,
      publisherId: event.publisher_id,
      timestamp,
    });
    return { channel: name, timestamp };
  }

  // ------------------------------------------------------------------- stats

  async stats(): Promise<ChannelStats> {
    const names = new Set<string>();
    for (const c of await this.store.list()) names.add(c.name);
    for (const p of this.subs.patterns()) names.add(p);
    return {
      total_channels: names.size,
      channel_patterns: this.subs.patternCount,
      channel_subscriptions: this.subs.size,
    };
  }

  /** Backend topics this node holds for channels (diagnostics and tests). */
  heldTopics(): string[] {
    return this.subs.heldTopics();
  }

  onModuleDestroy(): void {
    this.uses.stop();
  }

  // --------------------------------------------------------------- internals

  private ensureEnabled(): void {
    if (!this.options.enableChannels) {
      throw new StreamingError('feature_disabled', 'channels are disabled on this server');
    }
  }

  private async requireAuthorized(
    actor: ChannelActor,
    record: ChannelRecord,
    action: ChannelAction,
  ): Promise<void> {
    if (!(await this.authorizer.authorize(actor, channelToWire(record), action))) {
      throw new StreamingError('forbidden', `you may not ${action} to private channel ${record.name}`);
    }
  }

  private async visible(channels: ChannelRecord[], viewer?: ChannelActor | null): Promise<WireChannel[]> {
    const out: WireChannel[] = [];
    for (const c of channels) {
      const wire = channelToWire(c);
      if (viewer) {
        const owner = channelOwner(c.name);
        if (owner !== undefined && owner !== userToken(viewer.userId)) continue;
        if (c.private && !(await this.authorizer.authorize(viewer, wire, 'subscribe'))) continue;
      }
      out.push(wire);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
