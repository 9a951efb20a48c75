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
import { LocalRoom, LocalRooms } from './local-rooms';

/**
 * The local backend's broker: pub/sub delivered synchronously to this
 * process's handlers, and each room's message log (seq given and message
 * published in one step).
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
    const excess = r.history.length + 1 - options.maxHistory;
    const dropped = excess > 0 ? r.history.slice(0, excess).map((m) => m.id) : [];
    if (excess > r.history.length) dropped.push(stored.id);
    // On disk first: a write that fails changes nothing (no message, no seq given out).
    this.persistence?.appendMessage(stored, dropped);
    r.lastSeq = stored.seq;
    r.history.push(stored);
    r.byId.set(stored.id, stored);
    if (excess > 0) this.dropOldest(r, excess);
    // Same synchronous step as the seq assignment: subscribers see seq order.
    if (options.publishTopic) this.deliver(options.publishTopic, encodeMessageEnvelope(stored));
    return clone(stored);
  }

  /** Drop the `n` oldest messages from memory; returns their ids. */
  protected dropOldest(r: LocalRoom, n: number): string[] {
    const ids: string[] = [];
    for (const m of r.history.splice(0, n)) {
      r.byId.delete(m.id);
      ids.push(m.id);
    }
    return ids;
  }

  async getHistory(roomId: string, query: HistoryQuery): Promise<StoredMessage[]> {
    return selectHistory(this.room(roomId)?.history ?? [], query).map(clone);
  }

  async getMessage(roomId: string, messageId: string): Promise<StoredMessage | null> {
    const m = this.room(roomId)?.byId.get(messageId);
    return m ? clone(m) : null;
  }

  async updateMessage(
    roomId: string,
    messageId: string,
    mutation: MessageMutation,
  ): Promise<MutationResult | null> {
    const m = this.room(roomId)?.byId.get(messageId);
    if (!m) return null;
    const next = clone(m);
    const applied = applyMutation(next, mutation);
    if (applied === 'limited') return { message: next, changed: false, limited: true };
    if (!applied) return { message: next, changed: false };
    this.persistence?.saveMessage(next); // on disk first, then in memory
    Object.assign(m, clone(next));
    return { message: next, changed: true };
  }

  async addReply(roomId: string, parentId: string, at: string): Promise<StoredMessage | null> {
    // Synchronous read-modify-write: atomic in this process.
    const r = await this.updateMessage(roomId, parentId, { kind: 'reply', at });
    return r?.changed ? r.message : null;
  }

  async latestSeq(roomId: string): Promise<number> {
    return this.room(roomId)?.lastSeq ?? 0;
  }

  async oldestSeq(roomId: string): Promise<number> {
    const r = this.room(roomId);
    if (!r) return 1;
    return r.history.length > 0 ? r.history[0].seq : r.lastSeq + 1;
  }

  async trimHistory(roomId: string, limits: { maxCount: number; olderThan?: number }): Promise<number> {
    const r = this.room(roomId);
    if (!r) return 0;
    let n = Math.max(0, r.history.length - limits.maxCount);
    if (limits.olderThan !== undefined) {
      while (n < r.history.length && Date.parse(r.history[n].timestamp) < limits.olderThan) n++;
    }
    const ids = this.dropOldest(r, n);
    if (ids.length > 0) this.persistence?.deleteMessages(roomId, ids);
    return n;
  }
}
