import {
  Broker,
  HistoryQuery,
  MessageDraft,
  MessageMutation,
  MutationResult,
  StoredMessage,
  TopicHandler,
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
import { MAX_COUNT, count } from './redis-core';
import { RedisRooms } from './redis-rooms';
import {
  APPEND_MESSAGE,
  GET_HISTORY,
  OLDEST_SEQ,
  PUBLISH_ROUTED,
  TRIM_HISTORY,
  UPDATE_MESSAGE,
} from './scripts/broker-scripts';

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
 * Pub/sub order: appendMessage PUBLISHes inside its script, on the room's
 * node, so a room's messages reach every subscriber in seq order. In a
 * cluster, `publish()` also runs as a script routed by the topic (a room topic
 * routes to the room's slot), because a keyless PUBLISH would go to a random
 * node and two publishes on one topic could overtake each other.
 *
 * Subscriptions: a handler is kept per channel even while Redis is down, and
 * every channel is subscribed again whenever the subscriber is ready after a
 * reconnect (see {@link listen}, called by `connect()`).
 */
export abstract class RedisBroker extends RedisRooms implements Broker {
  /** channel -> handler */
  private readonly handlers = new Map<string, TopicHandler>();
  private listening = false;

  // ------------------------------------------------------------ pub/sub

  private readonly onMessage = (channel: string, message: string): void => {
    const handler = this.handlers.get(channel);
    if (!handler) return;
    try {
      handler(message, channel.slice(this.keyPrefix.length));
    } catch (err) {
      this.onError(err);
    }
  };

  /** Start delivering the subscriber's messages to the handlers (once until {@link stopListening}). */
  protected listen(): void {
    if (this.listening) return;
    this.subscriber.on('message', this.onMessage);
    // Belt and braces next to ioredis' autoResubscribe: after any reconnect, (re)subscribe
    // every topic this node wants, including ones whose SUBSCRIBE failed during an outage.
    this.subscriber.on('ready', () => {
      const channels = [...this.handlers.keys()];
      if (channels.length > 0)
        this.subscriber.subscribe(...channels).catch((err: unknown) => this.onError(err));
    });
    this.listening = true;
  }

  /** Forget every handler and stop delivering. Returns the channels that had a handler. */
  protected stopListening(): string[] {
    const channels = [...this.handlers.keys()];
    this.handlers.clear();
    if (this.listening) {
      this.subscriber.off('message', this.onMessage);
      this.listening = false;
    }
    return channels;
  }

  async publish(topic: string, payload: string): Promise<void> {
    const channel = this.keys.channel(topic);
    if (this.client.isCluster) {
      // Per-topic order: every publish on a topic leaves from the node of its routing slot.
      await this.run(PUBLISH_ROUTED, [this.keys.publishRoute(topic)], [channel, payload]);
    } else {
      await this.exec((c) => c.publish(channel, payload));
    }
  }

  async subscribe(topic: string, handler: TopicHandler): Promise<void> {
    const channel = this.keys.channel(topic);
    const sub = this.subscriber;
    // Kept even when Redis is down: the subscription is made when the subscriber is ready again.
    this.handlers.set(channel, handler);
    if (sub.status !== 'ready') throw this.unavailable(new Error(`Redis subscriber is ${sub.status}`));
    try {
      await sub.subscribe(channel);
    } catch (err) {
      const mapped = this.mapError(err);
      if (
        !(mapped instanceof StreamingError && mapped.code === 'backend_unavailable') &&
        this.handlers.get(channel) === handler
      ) {
        this.handlers.delete(channel);
      }
      throw mapped;
    }
  }

  async unsubscribe(topic: string): Promise<void> {
    const channel = this.keys.channel(topic);
    // Delivery stops now; the UNSUBSCRIBE below confirms it server-side.
    this.handlers.delete(channel);
    const sub = this.subscriber;
    if (sub.status !== 'ready') throw this.unavailable(new Error(`Redis subscriber is ${sub.status}`));
    try {
      await sub.unsubscribe(channel);
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
    const publish = Boolean(options.publishTopic);
    const envelope = publish ? splitMessageEnvelope(msg) : { prefix: '', suffix: '' };
    const k = this.keys.room(roomId);
    const seq = (await this.run(
      APPEND_MESSAGE,
      [k.room, k.seq, k.hist, k.msgs],
      [
        msg.id,
        timestampMs(msg.timestamp),
        tail,
        count(options.maxHistory),
        publish ? this.keys.channel(options.publishTopic!) : '',
        envelope.prefix,
        envelope.suffix,
      ],
    )) as number;
    if (seq === -1) throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
    if (seq === -2) throw new Error(`message ${msg.id} already exists in room ${roomId}`);
    return decodeMessageRecord(`${seq}${FIELD_SEP}${tail}`);
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
    const records = (await this.run(GET_HISTORY, [k.hist, k.msgs], [dir, start, end, limit])) as string[];
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
    const v = await this.exec((c) => c.get(this.keys.room(roomId).seq));
    return v === null ? 0 : Number(v);
  }

  async oldestSeq(roomId: string): Promise<number> {
    const k = this.keys.room(roomId);
    return (await this.run(OLDEST_SEQ, [k.hist, k.seq], [])) as number;
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
