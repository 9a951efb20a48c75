import { StreamingLogger } from '../common/streaming-logger';
import type { Connection } from '../connections/connection';
import type { StreamingHub } from '../connections/hub';
import {
  CHANNEL_TOPIC_PREFIX,
  RecentIds,
  channelOwner,
  decodeChannelPayload,
  patternTopic,
  userToken,
} from './channel-bus';
import type { ChannelFilterPredicate } from './channel-filters';
import { parseEvent } from './channel-rules';
import { ChannelTrie, hasWildcard } from './channel-trie';

/** One subscription: one per (connection, pattern). */
export interface ChannelSubscription {
  readonly conn: Connection;
  readonly state: ConnectionChannels;
  readonly pattern: string;
  readonly topic: string;
  /** Null when there are no filters (the common case: no parse, no call). */
  filter: ChannelFilterPredicate | null;
  /** Set on an exact-name subscription to a private channel the authorizer allowed: that channel's epoch. */
  grant: string | null;
}

/** A connection's subscriptions on this node. */
interface ConnectionChannels {
  readonly subs: Map<string, ChannelSubscription>;
  /** Last delivery stamp this connection received: one copy per publish however many patterns match. */
  stamp: number;
}

/**
 * The channel subscriptions of this node's connections: the trie that
 * plugs channel names and patterns into the {@link StreamingHub}. Each
 * subscription holds its pattern's backend topic in the hub's table; a
 * payload from any channel topic is matched once against the trie, filtered
 * per subscription, and delivered by the hub's loop, once per connection.
 * No rules are checked here (see `ChannelService`).
 */
export class ChannelSubscriptions {
  private readonly logger = new StreamingLogger('streaming.channels');
  private readonly trie = new ChannelTrie<ChannelSubscription>();
  private readonly byConnection = new Map<Connection, ConnectionChannels>();
  /** Subscriptions per user on this node (the `maxChannelsPerUser` count). */
  private readonly perUser = new Map<string, number>();
  /** Subscriptions per distinct pattern on this node. */
  private readonly perPattern = new Map<string, number>();
  private readonly seen = new RecentIds();
  private deliveryStamp = 0;

  constructor(private readonly hub: StreamingHub) {}

  /** The subscription of `conn` to `pattern`, if any. */
  get(conn: Connection, pattern: string): ChannelSubscription | undefined {
    return this.byConnection.get(conn)?.subs.get(pattern);
  }

  /** Subscriptions of a user's connections on this node. */
  countOf(userId: string): number {
    return this.perUser.get(userId) ?? 0;
  }

  /** Distinct patterns subscribed on this node. */
  patterns(): IterableIterator<string> {
    return this.perPattern.keys();
  }

  get patternCount(): number {
    return this.perPattern.size;
  }

  get size(): number {
    return this.trie.size;
  }

  /** Every (name, user) exact subscription on this node. */
  *exact(): Iterable<[string, string]> {
    for (const state of this.byConnection.values()) {
      for (const sub of state.subs.values())
        if (!hasWildcard(sub.pattern)) yield [sub.pattern, sub.conn.userId];
    }
  }

  /** Backend topics held for channels (diagnostics and tests). */
  heldTopics(): string[] {
    return this.hub.held(CHANNEL_TOPIC_PREFIX);
  }

  /**
   * Index a new subscription and hold its topic. Rejects (leaving nothing
   * indexed) when the broker refuses the topic.
   */
  async add(
    conn: Connection,
    pattern: string,
    filter: ChannelFilterPredicate | null,
    grant: string | null,
  ): Promise<void> {
    let state = this.byConnection.get(conn);
    if (!state) this.byConnection.set(conn, (state = { subs: new Map(), stamp: 0 }));
    const sub: ChannelSubscription = { conn, state, pattern, topic: patternTopic(pattern), filter, grant };
    state.subs.set(pattern, sub);
    this.trie.add(pattern, sub);
    this.perUser.set(conn.userId, this.countOf(conn.userId) + 1);
    this.perPattern.set(pattern, (this.perPattern.get(pattern) ?? 0) + 1);
    try {
      await this.hub.retain(sub.topic, this.onPayload);
    } catch (err) {
      if (state.subs.get(pattern) === sub) {
        this.unindex(sub);
        await this.hub.release(sub.topic);
      }
      throw err;
    }
  }

  /** Change the filters of an existing subscription; settles when its topic is held. */
  async replace(
    sub: ChannelSubscription,
    filter: ChannelFilterPredicate | null,
    grant: string | null,
  ): Promise<void> {
    sub.filter = filter;
    sub.grant = grant;
    await this.hub.retain(sub.topic, this.onPayload, 0);
  }

  /** Remove one subscription; false when there was none. */
  async remove(conn: Connection, pattern: string): Promise<boolean> {
    const sub = this.get(conn, pattern);
    if (!sub) return false;
    this.unindex(sub);
    await this.hub.release(sub.topic);
    return true;
  }

  /** Remove every subscription of a connection; returns how many. Never throws. */
  async removeAll(conn: Connection): Promise<number> {
    const state = this.byConnection.get(conn);
    if (!state) return 0;
    const subs = [...state.subs.values()];
    for (const sub of subs) this.unindex(sub);
    await this.hub.release(...subs.map((s) => s.topic));
    return subs.length;
  }

  /** Handler of every channel topic. */
  private readonly onPayload = (payload: string): void => {
    try {
      this.receive(payload);
    } catch (err) {
      this.logger.error(`channel delivery failed: ${err instanceof Error ? err.stack : String(err)}`);
    }
  };

  /** Match once, parse at most once (only for filters), one copy per connection. */
  private receive(payload: string): void {
    const decoded = decodeChannelPayload(payload);
    if (!decoded) {
      this.logger.warn('dropped a malformed channel payload');
      return;
    }
    const { header, envelope } = decoded;
    if (!this.seen.add(header.i)) return; // the copy from the other topic
    const stamp = ++this.deliveryStamp;
    const owner = channelOwner(header.c);
    const epoch = header.p;
    let parsed: { data: unknown; metadata: unknown } | null | undefined;
    this.hub.deliver(envelope, (send) =>
      this.trie.visit(header.c, (sub) => {
        if (sub.state.stamp === stamp) return;
        if (owner !== undefined && userToken(sub.conn.userId) !== owner) return;
        if (epoch !== undefined && sub.grant !== epoch) return;
        if (sub.filter !== null) {
          if (parsed === undefined) parsed = parseEvent(envelope);
          if (parsed === null || !sub.filter(parsed.data, parsed.metadata)) return;
        }
        sub.state.stamp = stamp;
        send(sub.conn);
      }),
    );
  }

  /** Drop a subscription from every local index (synchronous); the caller releases its topic. */
  private unindex(sub: ChannelSubscription): void {
    const { conn, state, pattern } = sub;
    state.subs.delete(pattern);
    if (state.subs.size === 0) this.byConnection.delete(conn);
    this.trie.remove(pattern, sub);
    const left = this.countOf(conn.userId) - 1;
    if (left > 0) this.perUser.set(conn.userId, left);
    else this.perUser.delete(conn.userId);
    const patternLeft = (this.perPattern.get(pattern) ?? 1) - 1;
    if (patternLeft > 0) this.perPattern.set(pattern, patternLeft);
    else this.perPattern.delete(pattern);
  }
}
