import { StreamingError } from '../../protocol/streaming-error';
import { encodeMessageEnvelope } from '../../protocol/wire';
import { applyMutation, selectHistory } from '../backend-helpers';
import {
  Broker,
  HistoryQuery,
  MessageDraft,
  MessageMutation,
  MutationResult,
  StoredMessage,
  TopicHandler,
} from '../../interfaces';
import { clone } from './local-presence';
import { LocalRooms } from './local-rooms';
import type { LocalRoom } from './room-cache';

/**
 * The local backend's broker: pub/sub delivered synchronously to this
 * process's handlers, and each room's message log (seq given and message
 * published in one step). With a store, the log is in the store (the append
 * is one synchronous transaction, on disk before the call resolves) and a
 * room's newest messages are cached; reads the cache cannot answer go to the
 * store.
 */
export class LocalBroker extends LocalRooms implements Broker {
  protected readonly handlers = new Map<string, TopicHandler>();

  async publish(topic: string, payload: string): Promise<void> {
    this.deliver(topic, payload);
  }

  protected deliver(topic: string, payload: string): void {
    const h = this.handlers.get(topic);
    if (h) h(payload, topic);
  }

  async subscribe(topic: string, handler: TopicHandler): Promise<void> {
    this.handlers.set(topic, handler);
  }

  async unsubscribe(topic: string): Promise<void> {
    this.handlers.delete(topic);
  }

  async appendMessage(
    roomId: string,
    draft: MessageDraft,
    options: { maxHistory: number; publishTopic?: string },
  ): Promise<StoredMessage> {
    const r = this.room(roomId);
    if (!r) throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
    const stored: StoredMessage = { ...clone(draft), seq: r.lastSeq + 1 };
    // The log keeps at most maxHistory messages (0: not even this one): those below keepFrom go.
    const keepFrom = Math.max(r.oldest, stored.seq + 1 - Math.max(0, options.maxHistory));
    // On disk first: a write that fails changes nothing (no message, no seq given out).
    this.persistence?.appendMessage(stored, keepFrom > r.oldest ? keepFrom : 0);
    r.lastSeq = stored.seq;
    r.oldest = keepFrom;
    this.forgetBelow(r, keepFrom);
    // The cache holds every message from cachedFrom on, so this one joins it.
    if (stored.seq >= keepFrom) {
      r.history.push(stored);
      r.byId.set(stored.id, stored);
    }
    this.rooms.fit(r);
    // Same synchronous step as the seq assignment: subscribers see seq order.
    if (options.publishTopic) this.deliver(options.publishTopic, encodeMessageEnvelope(stored));
    return clone(stored);
  }

  /** Drop the messages below `seq` from memory (they left the log). */
  protected forgetBelow(r: LocalRoom, seq: number): void {
    let n = 0;
    while (n < r.history.length && r.history[n].seq < seq) r.byId.delete(r.history[n++].id);
    if (n > 0) r.history.splice(0, n);
  }

  async getHistory(roomId: string, query: HistoryQuery): Promise<StoredMessage[]> {
    const r = this.held(roomId);
    const cached = r && this.cachedPage(r, query);
    if (cached) return cached.map(clone);
    if (!this.persistence) return [];
    const page = this.persistence.history(roomId, query);
    if (r) this.extendCache(r, query, page);
    return page;
  }

  /** The page from memory when memory holds all of it, else null. */
  private cachedPage(r: LocalRoom, q: HistoryQuery): StoredMessage[] | null {
    const page = selectHistory(r.history, q);
    if (r.cachedFrom <= r.oldest) return page; // the whole log is in memory
    // Every message from cachedFrom on is: the page is complete when it starts there or later.
    return (q.after !== undefined ? q.after + 1 >= r.cachedFrom : page.length >= q.limit) ? page : null;
  }

  /**
   * A newest-first page read from the store that reaches the cached messages
   * extends them downwards (scrolling up a room keeps it in memory, within the
   * cache's capacity). Other pages (a resume from far back) are not kept.
   */
  private extendCache(r: LocalRoom, q: HistoryQuery, page: StoredMessage[]): void {
    if (q.after !== undefined || q.limit <= 0 || (q.before ?? Infinity) < r.cachedFrom) return;
    const older = page.filter((m) => m.seq < r.cachedFrom).map(clone);
    if (older.length === 0) return;
    r.history.unshift(...older);
    for (const m of older) r.byId.set(m.id, m);
    // A short page went down to the oldest message: the whole log is in memory.
    r.cachedFrom = page.length < q.limit ? Math.min(older[0].seq, r.oldest) : older[0].seq;
    this.rooms.fit(r);
  }

  async getMessage(roomId: string, messageId: string): Promise<StoredMessage | null> {
    const r = this.held(roomId);
    const m = r?.byId.get(messageId);
    if (m) return clone(m);
    if (r && r.cachedFrom <= r.oldest) return null;
    return this.persistence?.getMessage(roomId, messageId) ?? null;
  }

  async updateMessage(
    roomId: string,
    messageId: string,
    mutation: MessageMutation,
  ): Promise<MutationResult | null> {
    const r = this.held(roomId);
    const cached = r?.byId.get(messageId);
    const m =
      cached ?? (r && r.cachedFrom <= r.oldest ? null : this.persistence?.getMessage(roomId, messageId));
    if (!m) return null;
    const next = clone(m);
    const applied = applyMutation(next, mutation);
    if (applied === 'limited') return { message: next, changed: false, limited: true };
    if (!applied) return { message: next, changed: false };
    this.persistence?.saveMessage(next, next.content !== m.content); // on disk first, then in memory
    if (cached) Object.assign(cached, clone(next));
    return { message: next, changed: true };
  }

  async addReply(roomId: string, parentId: string, at: string): Promise<StoredMessage | null> {
    // Synchronous read-modify-write: atomic in this process.
    const r = await this.updateMessage(roomId, parentId, { kind: 'reply', at });
    return r?.changed ? r.message : null;
  }

  /** Where the room's log stands, from memory or the store (without caching the room). */
  private logOf(roomId: string): { lastSeq: number; oldest: number } | null {
    const r = this.held(roomId);
    if (r) return r;
    const p = this.persistence?.getRoom(roomId);
    return p ? { lastSeq: p.lastSeq, oldest: p.oldestSeq } : null;
  }

  async latestSeq(roomId: string): Promise<number> {
    return this.logOf(roomId)?.lastSeq ?? 0;
  }

  async oldestSeq(roomId: string): Promise<number> {
    return this.logOf(roomId)?.oldest ?? 1;
  }

  async trimHistory(roomId: string, limits: { maxCount: number; olderThan?: number }): Promise<number> {
    const r = this.held(roomId);
    if (this.persistence) {
      const { dropped, oldestSeq } = this.persistence.trimHistory(roomId, limits.maxCount, limits.olderThan);
      if (r && dropped > 0) {
        r.oldest = oldestSeq;
        this.forgetBelow(r, oldestSeq);
        this.rooms.fit(r);
      }
      return dropped;
    }
    if (!r) return 0;
    let n = Math.max(0, r.history.length - limits.maxCount);
    if (limits.olderThan !== undefined) {
      while (n < r.history.length && Date.parse(r.history[n].timestamp) < limits.olderThan) n++;
    }
    if (n > 0) {
      r.oldest = r.history[n - 1].seq + 1;
      this.forgetBelow(r, r.oldest);
    }
    return n;
  }

  /** `search_messages` candidates from the store's FTS5 index; null in memory mode (the service scans). */
  async searchMessages(
    roomId: string,
    query: { words: string[]; limit: number; window: number; before?: number },
  ): Promise<StoredMessage[] | null> {
    return this.persistence ? this.persistence.searchMessages(roomId, query) : null;
  }
}
