import type { Cluster } from 'ioredis';
import {
  Broker,
  HistoryQuery,
  MessageDraft,
  MessageMutation,
  MutationResult,
  StoredMessage,
  TopicHandler,
  roomTopic,
} from '../../interfaces';
import { StreamingError } from '../../protocol/streaming-error';
import {
  FIELD_SEP,
  decodeMessageRecord,
  encodeMessageTail,
  jsonLiteral,
  splitMessageEnvelope,
  timestampMs,
} from './redis-codec';
import { MAX_COUNT, count, type RedisClient } from './redis-core';
import { RedisRooms } from './redis-rooms';
import {
  APPEND_MESSAGE,
  FLUSH_OUTBOX,
  GET_HISTORY,
  LATEST_SEQ,
  OLDEST_SEQ,
  PUBLISH_ROUTED,
  TRIM_HISTORY,
  UPDATE_MESSAGE,
} from './scripts/broker-scripts';

/** A pub/sub channel of a topic: classic, or a shard channel (see redis-keys.ts). */
export interface Channel {
  name: string;
  topic: string;
  sharded: boolean;
}

/**
 * The Broker of the Redis backend: fan-out through Redis pub/sub and each
 * room's message log.
 *
 * History: per room, a stream `hist` with one entry `<seq>-0 {id, ts}` per
 * message keeps the order (paging by seq is XRANGE / XREVRANGE, trimming is
 * XRANGE from the start), and a hash `msgs` messageId -> record holds each
 * message's current state, so edits, deletes and reactions rewrite the record
 * in place (one Lua script) and never duplicate a message in history.
 *
 * Pub/sub, classic or sharded (chosen at connect, see {@link usePubSub}):
 * - classic PUBLISH / SUBSCRIBE on `<prefix><topic>`. In a cluster,
 *   `publish()` runs as a script routed by the topic (a room topic routes to
 *   the room's slot), because a keyless PUBLISH would go to a random node and
 *   two publishes on one topic could overtake each other; and every shard
 *   forwards every message to every other shard.
 * - sharded SPUBLISH / SSUBSCRIBE (Redis 7) for the topics about one room,
 *   user or channel, on channels hash-tagged like the keys they go with
 *   (redis-keys.ts): a message stays within the shard owning the slot, and
 *   each node's subscriber holds one connection per shard it needs (ioredis
 *   `shardedSubscribers`). Node-wide topics stay classic.
 *
 * Order: appendMessage publishes inside its script, on the room's node, so a
 * room's messages reach every subscriber in seq order; other events of the
 * room published later by `publish()` go to that same node (the routing key,
 * or the shard channel's slot), so they arrive after them.
 *
 * Durable appends (`waitReplicas` > 0): the script parks the envelope in the
 * room's outbox, the caller waits until that many replicas have the write
 * (WAIT, at most the replicas online), then publishes the outbox up to its
 * seq; only then is the message acknowledged. A shortfall rejects the send with
 * `backend_unavailable` (the message stays stored, hidden and unpublished until
 * a later append of the room publishes it), so a failover can lose no message
 * that was acknowledged or delivered, and never hands its seq to another one
 * that subscribers already saw.
 *
 * Subscriptions: a handler is kept per topic even while Redis is down, and
 * every topic is subscribed again whenever the subscriber is ready after a
 * reconnect (see {@link listen}, called by `connect()`).
 */
export abstract class RedisBroker extends RedisRooms implements Broker {
  /** topic -> handler */
  private readonly handlers = new Map<string, TopicHandler>();
  /** channel -> its topic and kind, for the topics of {@link handlers} */
  private readonly channels = new Map<string, Channel>();
  private listening = false;
  /** Topics about one room, user or channel go over SPUBLISH / SSUBSCRIBE. */
  private sharded = false;

  // ------------------------------------------------------------ pub/sub

  /** Whether topics about one room, user or channel use sharded pub/sub (decided by `connect()`). */
  get shardedPubSub(): boolean {
    return this.sharded;
  }

  /** Choose classic or sharded pub/sub (before {@link listen}): the channels of existing handlers follow. */
  protected usePubSub(sharded: boolean): void {
    this.sharded = sharded;
    this.channels.clear();
    for (const topic of this.handlers.keys()) {
      const c = this.channelOf(topic);
      this.channels.set(c.name, c);
    }
  }

  private channelOf(topic: string): Channel {
    const shard = this.sharded ? this.keys.shardChannel(topic) : null;
    return shard
      ? { name: shard, topic, sharded: true }
      : { name: this.keys.channel(topic), topic, sharded: false };
  }

  private readonly onMessage = (channel: string, message: string): void => {
    const topic = this.channels.get(channel)?.topic;
    const handler = topic === undefined ? undefined : this.handlers.get(topic);
    if (!handler) return;
    try {
      handler(message, topic!);
    } catch (err) {
      this.onError(err);
    }
  };

  /** SUBSCRIBE and SSUBSCRIBE (one shard channel per command: each may live on another shard). */
  private async subscribeChannels(sub: RedisClient, channels: Channel[]): Promise<void> {
    const classic = channels.filter((c) => !c.sharded).map((c) => c.name);
    await Promise.all([
      ...(classic.length > 0 ? [sub.subscribe(...classic)] : []),
      ...channels.filter((c) => c.sharded).map((c) => sub.ssubscribe(c.name)),
    ]);
  }

  /** UNSUBSCRIBE and SUNSUBSCRIBE. */
  protected async unsubscribeChannels(sub: RedisClient, channels: Channel[]): Promise<void> {
    const classic = channels.filter((c) => !c.sharded).map((c) => c.name);
    await Promise.all([
      ...(classic.length > 0 ? [sub.unsubscribe(...classic)] : []),
      ...channels.filter((c) => c.sharded).map((c) => sub.sunsubscribe(c.name)),
    ]);
  }

  /** Start delivering the subscriber's messages to the handlers (once until {@link stopListening}). */
  protected listen(): void {
    if (this.listening) return;
    const sub = this.subscriber;
    sub.on('message', this.onMessage);
    sub.on('smessage', this.onMessage);
    // Belt and braces next to ioredis' autoResubscribe: after any reconnect, (re)subscribe
    // every topic this node wants, including ones whose SUBSCRIBE failed during an outage.
    sub.on('ready', this.resubscribe);
    this.listening = true;
  }

  /** Subscribe every topic that has a handler (after a reconnect, or once connected). */
  protected readonly resubscribe = (): void => {
    this.subscribeChannels(this.subscriber, [...this.channels.values()]).catch((err: unknown) =>
      this.onError(err),
    );
  };

  /** Forget every handler and stop delivering. Returns the channels that had a handler. */
  protected stopListening(): Channel[] {
    const channels = [...this.channels.values()];
    this.handlers.clear();
    this.channels.clear();
    if (this.listening) {
      this.subscriber.off('message', this.onMessage);
      this.subscriber.off('smessage', this.onMessage);
      this.subscriber.off('ready', this.resubscribe);
      this.listening = false;
    }
    return channels;
  }

  async publish(topic: string, payload: string): Promise<void> {
    const channel = this.channelOf(topic);
    if (channel.sharded) {
      // Routed by the channel's slot: per-topic order comes with it.
      await this.exec((c) => c.spublish(channel.name, payload));
    } else if (this.client.isCluster) {
      // Per-topic order: every publish on a topic leaves from the node of its routing slot.
      await this.run(PUBLISH_ROUTED, [this.keys.publishRoute(topic)], [channel.name, payload]);
    } else {
      await this.exec((c) => c.publish(channel.name, payload));
    }
  }

  async subscribe(topic: string, handler: TopicHandler): Promise<void> {
    const channel = this.channelOf(topic);
    const sub = this.subscriber;
    // Kept even when Redis is down: the subscription is made when the subscriber is ready again.
    this.handlers.set(topic, handler);
    this.channels.set(channel.name, channel);
    if (sub.status !== 'ready') throw this.unavailable(new Error(`Redis subscriber is ${sub.status}`));
    try {
      await this.subscribeChannels(sub, [channel]);
    } catch (err) {
      const mapped = this.mapError(err);
      if (
        !(mapped instanceof StreamingError && mapped.code === 'backend_unavailable') &&
        this.handlers.get(topic) === handler
      ) {
        this.handlers.delete(topic);
        this.channels.delete(channel.name);
      }
      throw mapped;
    }
  }

  async unsubscribe(topic: string): Promise<void> {
    const channel = this.channelOf(topic);
    // Delivery stops now; the UNSUBSCRIBE below confirms it server-side.
    this.handlers.delete(topic);
    this.channels.delete(channel.name);
    const sub = this.subscriber;
    if (sub.status !== 'ready') throw this.unavailable(new Error(`Redis subscriber is ${sub.status}`));
    try {
      await this.unsubscribeChannels(sub, [channel]);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  // ------------------------------------------------------------ history

  async appendMessage(
    roomId: string,
    draft: MessageDraft,
    options: { maxHistory: number; publishTopic?: string },
  ): Promise<StoredMessage> {
    const msg: MessageDraft = { ...draft, metadata: draft.metadata ?? {}, reactions: draft.reactions ?? {} };
    const tail = encodeMessageTail(msg);
    const target = options.publishTopic ? this.channelOf(options.publishTopic) : undefined;
    // A script may SPUBLISH only in the slot of its keys: the room's own topic.
    if (target?.sharded && target.topic !== roomTopic(roomId)) {
      throw new Error(
        `appendMessage publishes on the room's own topic (${roomTopic(roomId)}) or a node-wide one, not on ${target.topic}`,
      );
    }
    const channel = target?.name ?? '';
    const envelope = target ? splitMessageEnvelope(msg) : { prefix: '', suffix: '' };
    const command = target?.sharded ? 'SPUBLISH' : 'PUBLISH';
    const k = this.keys.room(roomId);
    const res = await this.run(
      APPEND_MESSAGE,
      [k.room, k.seq, k.hist, k.msgs, k.outbox],
      [
        msg.id,
        timestampMs(msg.timestamp),
        tail,
        count(options.maxHistory),
        channel,
        envelope.prefix,
        envelope.suffix,
        command,
        this.durability.waitReplicas,
      ],
    );
    if (res === -1) throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
    if (res === -2) throw new Error(`message ${msg.id} already exists in room ${roomId}`);
    const [seq, need] = res as [number, number];
    if (need > 0) {
      await this.awaitReplicas(k.seq, need, `message ${msg.id} (seq ${seq} of room ${roomId})`);
      if (channel) await this.run(FLUSH_OUTBOX, [k.outbox], [seq, command, channel]);
    }
    return decodeMessageRecord(`${seq}${FIELD_SEP}${tail}`);
  }

  /**
   * WAIT until `need` replicas have this connection's writes, on the node
   * owning `routeKey`: one pipeline (a read of the key routes it, and keeps
   * the WAIT on the connection that wrote). Fewer in time: `backend_unavailable`.
   */
  private async awaitReplicas(routeKey: string, need: number, what: string): Promise<void> {
    const timeoutMs = Math.max(1, Math.round(this.durability.waitTimeoutMs));
    const replies = await this.exec((c) => c.pipeline().exists(routeKey).wait(need, timeoutMs).exec());
    const failed = replies?.find(([err]) => err)?.[0];
    if (failed) {
      // A redirection means the slot moved (failover) between the write and the WAIT.
      if (this.client.isCluster && /^(MOVED|ASK) /.test(failed.message))
        (this.client as Cluster).refreshSlotsCache();
      throw this.unavailable(failed);
    }
    const acked = Number(replies?.[1]?.[1] ?? 0);
    if (acked < need) {
      throw this.unavailable(
        new Error(`${what} reached ${acked} of ${need} replicas within ${timeoutMs} ms (WAIT)`),
      );
    }
  }

  async getHistory(roomId: string, query: HistoryQuery): Promise<StoredMessage[]> {
    const { after, before } = query;
    const limit = count(query.limit);
    if (limit === 0 || Number.isNaN(after) || Number.isNaN(before)) return [];
    // Stream ids are `<seq>-0`: "n" as a start means n-0, as an end n-<max>.
    let start = '-';
    if (after !== undefined) {
      if (after === Infinity) return [];
      const s = Math.floor(after) + 1;
      if (s > 0) start = String(s);
    }
    let end = '+';
    if (before !== undefined && before !== Infinity) {
      const e = Math.ceil(before) - 1;
      if (e < 1) return [];
      end = String(e);
    }
    const dir = after !== undefined ? 'asc' : 'desc';
    const k = this.keys.room(roomId);
    const records = (await this.run(
      GET_HISTORY,
      [k.hist, k.msgs, k.outbox],
      [dir, start, end, limit],
    )) as string[];
    const messages = records.map(decodeMessageRecord);
    return dir === 'desc' ? messages.reverse() : messages;
  }

  async getMessage(roomId: string, messageId: string): Promise<StoredMessage | null> {
    const v = await this.exec((c) => c.hget(this.keys.room(roomId).msgs, messageId));
    return v === null ? null : decodeMessageRecord(v);
  }

  async updateMessage(
    roomId: string,
    messageId: string,
    mutation: MessageMutation,
  ): Promise<MutationResult | null> {
    let args: string[];
    switch (mutation.kind) {
      case 'edit':
        args = [
          'edit',
          jsonLiteral(mutation.content),
          jsonLiteral(mutation.by),
          jsonLiteral(mutation.at),
          String(mutation.keepVersions),
        ];
        break;
      case 'delete':
        args = ['delete', jsonLiteral(mutation.by), jsonLiteral(mutation.at), String(mutation.keepVersions)];
        break;
      case 'react':
        args = [
          'react',
          jsonLiteral(mutation.reaction),
          jsonLiteral(mutation.userId),
          mutation.add ? '1' : '0',
          String(mutation.maxReactions),
        ];
        break;
      case 'reply':
        args = ['reply', jsonLiteral(mutation.at)];
        break;
      default:
        throw new Error(`unknown mutation kind ${(mutation as { kind: string }).kind}`);
    }
    const res = await this.run(UPDATE_MESSAGE, [this.keys.room(roomId).msgs], [messageId, ...args]);
    if (!Array.isArray(res)) return null;
    const [changed, record] = res as [number, string];
    const message = decodeMessageRecord(record);
    return changed === -1 ? { message, changed: false, limited: true } : { message, changed: changed === 1 };
  }

  async addReply(roomId: string, parentId: string, at: string): Promise<StoredMessage | null> {
    // One script run (UPDATE_MESSAGE): atomic whatever node races it.
    const r = await this.updateMessage(roomId, parentId, { kind: 'reply', at });
    return r?.changed ? r.message : null;
  }

  async latestSeq(roomId: string): Promise<number> {
    const k = this.keys.room(roomId);
    return Number(await this.run(LATEST_SEQ, [k.seq, k.outbox], []));
  }

  async oldestSeq(roomId: string): Promise<number> {
    const k = this.keys.room(roomId);
    return (await this.run(OLDEST_SEQ, [k.hist, k.seq, k.outbox], [])) as number;
  }

  async trimHistory(roomId: string, limits: { maxCount: number; olderThan?: number }): Promise<number> {
    const k = this.keys.room(roomId);
    const { olderThan } = limits;
    let cutoff = '';
    if (olderThan !== undefined && !Number.isNaN(olderThan)) {
      cutoff = String(Math.max(-MAX_COUNT, Math.min(olderThan, MAX_COUNT)));
    }
    return (await this.run(TRIM_HISTORY, [k.hist, k.msgs], [count(limits.maxCount), cutoff])) as number;
  }
}
