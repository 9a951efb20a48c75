import type { Msg, Subscription } from 'nats';
import { StreamingError } from '../../protocol/streaming-error';
import { encodeMessageEnvelope } from '../../protocol/wire';
import { applyMutation } from '../backend-helpers';
import type {
  Broker,
  HistoryQuery,
  MessageDraft,
  MessageMutation,
  MutationResult,
  StoredMessage,
  TopicHandler,
} from '../../interfaces';
import {
  MessageValue,
  RoomLogEntry,
  decodeRoomLog,
  encodeRoomLog,
  fromUtf8,
  jsonBytes,
  pageRange,
  parseJson,
  timestampMs,
  utf8,
} from './nats-codec';
import { MAX_CAS_ATTEMPTS, Session, Slot } from './nats-core';
import { NatsModeration } from './nats-moderation';
import { READ_BATCH, batched, casBackoff, count, isConflict } from './nats-util';

/** The room log entry of a room and its revision in `seqs`. */
type RoomLog = { entry: RoomLogEntry; revision: number };

/**
 * The NATS backend's {@link Broker} (layer 5, on {@link NatsModeration}):
 * pub/sub over core NATS and each room's message log.
 *
 * Layout:
 * - seqs: room -> the room log entry (last seq, history floor, incarnation,
 *   last topic and envelope)
 * - messages: `<room>.s.<seq>` -> message record; `<room>.i.<id>` -> seq
 *
 * Ordering (appendMessage): the room log entry in `seqs` is the room's
 * sequencer. Appending seq n+1 (1) creates the message record `<room>.s.<n+1>`
 * (create fails if it exists: the slot is taken), then (2) replaces the room
 * log entry at revision r (the one holding seq n) with seq n+1 and the
 * message's envelope. Step 2 is one JetStream publish with an expected last
 * subject sequence, so the stream stores a room's entries strictly in seq
 * order, and the server republishes each stored entry on `<prefix>.rl.<room>`
 * (stream `republish`) from one internal connection, in that order. Every
 * node listens on `<prefix>.rl.*` with one core subscription and hands the
 * envelope to the handler of the entry's topic. So all subscribers, on all
 * nodes, see a room's messages in strictly increasing seq order, even with
 * concurrent appends from several nodes, without reorder buffers or timers.
 * The cost: every node with at least one subscription receives every room's
 * appended messages (filtered by topic locally), like adapters that broadcast
 * to all nodes. Plain `publish()` goes to `<prefix>.t.<topic>`: per-topic
 * order per publishing connection, as core NATS gives it. On one server, a
 * publish made after appendMessage resolved reaches subscribers after the
 * appended message (the server queues the republish before the publish ack).
 * If a node dies between (1) and (2), the next appender finds the record,
 * finishes (2) for it (publishing its envelope), then appends its own: no seq
 * is ever lost or reused, and a record is in history before its seq is given
 * out. Records of a deleted room (older incarnation) are discarded instead.
 *
 * In a NATS cluster the room log keeps its order (one stream leader
 * republishes), but a plain publish from another server may overtake a
 * republished entry: only appended messages are ordered among themselves.
 *
 * Payloads and values travel as UTF-8 (JSON escapes lone surrogates; a raw one
 * in a plain `publish()` payload becomes U+FFFD). Message ids are not checked
 * for uniqueness within a room (the callers generate UUIDs).
 */
export abstract class NatsBroker extends NatsModeration implements Broker {
  /** topic -> its core subscription and handler */
  private readonly topics = new Map<
    string,
    { sub: Subscription; handler: TopicHandler; ready: Promise<void> }
  >();
  private roomLogSub: Subscription | null = null;

  // ------------------------------------------------------------ pub/sub

  private readonly onTopicMessage = (topic: string, msg: Msg): void => {
    this.deliver(topic, fromUtf8(msg.data));
  };

  /** A republished room log entry: hand its envelope to the handler of its topic. */
  private readonly onRoomLog = (_err: unknown, msg: Msg): void => {
    if (!msg || msg.data.length === 0) return;
    const entry = decodeRoomLog(fromUtf8(msg.data));
    if (entry?.topic === undefined || entry.envelope === undefined) return;
    this.deliver(entry.topic, entry.envelope);
  };

  private deliver(topic: string, payload: string): void {
    const t = this.topics.get(topic);
    if (!t) return;
    try {
      t.handler(payload, topic);
    } catch (err) {
      this.onError(err);
    }
  }

  async publish(topic: string, payload: string): Promise<void> {
    await this.exec(async (s) => {
      s.nc.publish(this.names.topicSubject(topic), utf8(payload));
    });
  }

  async subscribe(topic: string, handler: TopicHandler): Promise<void> {
    await this.exec(async (s) => {
      const existing = this.topics.get(topic);
      if (existing) {
        // One subscription per topic: a new handler replaces the old one.
        existing.handler = handler;
        return existing.ready;
      }
      const sub = s.nc.subscribe(this.names.topicSubject(topic), {
        callback: (_err, msg) => this.onTopicMessage(topic, msg),
      });
      this.roomLogSub ??= s.nc.subscribe(this.names.roomLogWildcard(), { callback: this.onRoomLog });
      // Live on the server once the server answered the PING behind the SUBs.
      const ready = s.nc.flush();
      const entry = { sub, handler, ready };
      this.topics.set(topic, entry);
      try {
        await ready;
      } catch (err) {
        if (this.topics.get(topic) === entry) {
          this.topics.delete(topic);
          this.unsub(sub);
          this.dropRoomLogIfIdle();
        }
        throw err;
      }
    });
  }

  async unsubscribe(topic: string): Promise<void> {
    const t = this.topics.get(topic);
    this.topics.delete(topic);
    if (t) this.unsub(t.sub);
    this.dropRoomLogIfIdle();
  }

  private dropRoomLogIfIdle(): void {
    if (this.topics.size === 0 && this.roomLogSub) {
      this.unsub(this.roomLogSub);
      this.roomLogSub = null;
    }
  }

  /** Remove every subscription (topics and the room log), for close(). */
  protected dropSubscriptions(): void {
    for (const t of this.topics.values()) this.unsub(t.sub);
    this.topics.clear();
    if (this.roomLogSub) this.unsub(this.roomLogSub);
    this.roomLogSub = null;
  }

  // ------------------------------------------------------------ history

  private async roomLog(s: Session, roomId: string): Promise<RoomLog | null> {
    const e = await s.kv.seqs.get(this.names.roomLog(roomId));
    if (!e || e.operation !== 'PUT') return null;
    const entry = decodeRoomLog(fromUtf8(e.value));
    return entry ? { entry, revision: e.revision } : null;
  }

  /** The room log entry that commits a message record at its seq. */
  private commitEntry(current: RoomLogEntry, rec: MessageValue): RoomLogEntry {
    const seq = rec.m.seq;
    const floor = rec.h < 0 ? current.floor : Math.max(current.floor, seq - rec.h + 1);
    const entry: RoomLogEntry = { seq, floor, inc: current.inc };
    if (rec.t !== null) {
      entry.topic = rec.t;
      entry.envelope = encodeMessageEnvelope(rec.m);
    }
    return entry;
  }

  async appendMessage(
    roomId: string,
    draft: MessageDraft,
    options: { maxHistory: number; publishTopic?: string },
  ): Promise<StoredMessage> {
    return this.exec((s) =>
      this.queue.run(`append/${roomId}`, async () => {
        const h = options.maxHistory === Infinity ? -1 : count(options.maxHistory);
        const topic = options.publishTopic ? options.publishTopic : null;
        const base = { ...draft, metadata: draft.metadata ?? {}, reactions: draft.reactions ?? {} };
        for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
          const log = await this.roomLog(s, roomId);
          if (!log) throw new StreamingError('room_not_found', `room ${roomId} does not exist`);
          const seq = log.entry.seq + 1;
          // The JSON form, exactly what readers (and a node finishing this commit) will see.
          const stored = JSON.parse(JSON.stringify({ ...base, seq })) as StoredMessage;
          const rec: MessageValue = { t: topic, h, i: log.entry.inc, m: stored };
          const recKey = this.names.messageAt(roomId, seq);
          // (1) Take the slot: the record exists before its seq is given out.
          try {
            await s.kv.messages.put(recKey, jsonBytes(rec), { previousSeq: 0 });
          } catch (err) {
            if (!isConflict(err)) throw err;
            // Another append holds this slot (or died holding it): finish its commit, then retry.
            await this.helpCommit(s, roomId, log, recKey);
            await casBackoff(attempt);
            continue;
          }
          const indexed = s.kv.messages.put(this.names.messageId(roomId, stored.id), utf8(String(seq)));
          indexed.catch(() => undefined); // awaited below; the commit's failure comes first
          // (2) Commit: the room log moves to seq (and the server republishes the envelope).
          const floors = await this.commit(s, roomId, log, rec);
          await indexed;
          if (floors && floors.to > floors.from)
            this.later(() => this.dropRecords(s, roomId, log.entry.inc, floors.from, floors.to));
          return stored;
        }
        throw this.contention('seqs', roomId);
      }),
    );
  }

  /**
   * Compare-and-swap the room log from `log` to the entry committing `rec`.
   * Returns the history floor before and after, or null when another node
   * committed the record for us.
   */
  private async commit(
    s: Session,
    roomId: string,
    log: RoomLog,
    rec: MessageValue,
  ): Promise<{ from: number; to: number } | null> {
    let cur = log;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const entry = this.commitEntry(cur.entry, rec);
      try {
        await s.kv.seqs.update(this.names.roomLog(roomId), utf8(encodeRoomLog(entry)), cur.revision);
        return { from: cur.entry.floor, to: entry.floor };
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      const again = await this.roomLog(s, roomId);
      if (!again || again.entry.inc !== rec.i) throw new Error(`room ${roomId} was deleted`);
      if (again.entry.seq >= rec.m.seq) return null; // committed by a node that found our record
      cur = again; // the floor moved (trimHistory): commit on top of it
    }
    throw this.contention('seqs', roomId);
  }

  /** The record at the next seq exists but the room log has not moved: finish that commit (or drop a leftover). */
  private async helpCommit(s: Session, roomId: string, log: RoomLog, recKey: string): Promise<void> {
    const slot = await this.slot<MessageValue>(s.kv.messages, recKey);
    if (!slot.value || slot.value.i !== log.entry.inc) {
      // A delete marker, or a record of a deleted room with the same id (not ours
      // to publish): remove exactly that revision, so that the slot can be taken.
      if (slot.revision > 0) await this.purgeRevision(s, 'messages', recKey, slot.revision);
      return;
    }
    const entry = this.commitEntry(log.entry, slot.value);
    try {
      await s.kv.seqs.update(this.names.roomLog(roomId), utf8(encodeRoomLog(entry)), log.revision);
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }

  /** Remove the records (and id index entries) of seqs [from, to) of one incarnation. */
  private async dropRecords(
    s: Session,
    roomId: string,
    inc: string,
    from: number,
    to: number,
  ): Promise<void> {
    const seqs = Array.from({ length: to - from }, (_, i) => from + i);
    await batched(seqs, async (seq) => {
      const key = this.names.messageAt(roomId, seq);
      const rec = await this.slot<MessageValue>(s.kv.messages, key);
      if (!rec.value || rec.value.i !== inc) return;
      const idKey = this.names.messageId(roomId, rec.value.m.id);
      const idSlot = await s.kv.messages.get(idKey);
      await Promise.all([
        this.purgeRevision(s, 'messages', key, rec.revision),
        idSlot && idSlot.operation === 'PUT' && fromUtf8(idSlot.value) === String(seq)
          ? this.purgeRevision(s, 'messages', idKey, idSlot.revision)
          : undefined,
      ]);
    });
  }

  /** Records of seqs `first..last` that belong to `log`'s incarnation, in seq order. */
  private async records(
    s: Session,
    roomId: string,
    inc: string,
    first: number,
    last: number,
  ): Promise<StoredMessage[]> {
    const seqs = Array.from({ length: last - first + 1 }, (_, i) => first + i);
    const recs = await batched(seqs, (seq) =>
      this.value<MessageValue>(s.kv.messages, this.names.messageAt(roomId, seq)),
    );
    return recs.filter((r): r is MessageValue => r !== null && r.i === inc).map((r) => r.m);
  }

  async getHistory(roomId: string, query: HistoryQuery): Promise<StoredMessage[]> {
    return this.exec(async (s) => {
      const { after, before, limit } = query;
      if (limit <= 0 || Number.isNaN(after) || Number.isNaN(before)) return [];
      const log = await this.roomLog(s, roomId);
      if (!log) return [];
      // History is the contiguous range floor..seq; intersect with (after, before).
      let lo = log.entry.floor;
      let hi = log.entry.seq;
      if (after !== undefined) lo = Math.max(lo, Math.floor(after) + 1);
      if (before !== undefined) hi = Math.min(hi, Math.ceil(before) - 1);
      const page = pageRange(lo, hi, limit, after !== undefined);
      if (!page) return [];
      return this.records(s, roomId, log.entry.inc, page.first, page.last);
    });
  }

  /** The record of a message by id, if it is in history; with its key and revision. */
  private async findMessage(
    s: Session,
    roomId: string,
    messageId: string,
  ): Promise<{ key: string; slot: Slot<MessageValue> } | null> {
    const idEntry = await s.kv.messages.get(this.names.messageId(roomId, messageId));
    if (!idEntry || idEntry.operation !== 'PUT') return null;
    const seq = Number(fromUtf8(idEntry.value));
    const key = this.names.messageAt(roomId, seq);
    const [log, slot] = await Promise.all([
      this.roomLog(s, roomId),
      this.slot<MessageValue>(s.kv.messages, key),
    ]);
    if (!log || !slot.value) return null;
    const { entry } = log;
    if (seq < entry.floor || seq > entry.seq || slot.value.i !== entry.inc || slot.value.m.id !== messageId) {
      return null;
    }
    return { key, slot };
  }

  async getMessage(roomId: string, messageId: string): Promise<StoredMessage | null> {
    return this.exec(async (s) => (await this.findMessage(s, roomId, messageId))?.slot.value?.m ?? null);
  }

  async updateMessage(
    roomId: string,
    messageId: string,
    mutation: MessageMutation,
  ): Promise<MutationResult | null> {
    return this.exec((s) =>
      this.queue.run(`message/${roomId}/${messageId}`, async () => {
        for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
          const found = await this.findMessage(s, roomId, messageId);
          if (!found) return null;
          const rec = found.slot.value!;
          const applied = applyMutation(rec.m, mutation);
          if (applied === 'limited') return { message: rec.m, changed: false, limited: true };
          const changed = applied;
          if (!changed) return { message: rec.m, changed };
          const bytes = jsonBytes(rec);
          try {
            await s.kv.messages.update(found.key, bytes, found.slot.revision);
          } catch (err) {
            if (!isConflict(err)) throw err;
            await casBackoff(attempt);
            continue;
          }
          return { message: parseJson<MessageValue>(bytes).m, changed };
        }
        throw this.contention('messages', messageId);
      }),
    );
  }

  async addReply(roomId: string, parentId: string, at: string): Promise<StoredMessage | null> {
    // Compare-and-swap on the parent's record (updateMessage): replies racing on other nodes retry.
    const r = await this.updateMessage(roomId, parentId, { kind: 'reply', at });
    return r?.changed ? r.message : null;
  }

  async latestSeq(roomId: string): Promise<number> {
    return this.exec(async (s) => (await this.roomLog(s, roomId))?.entry.seq ?? 0);
  }

  async oldestSeq(roomId: string): Promise<number> {
    return this.exec(async (s) => (await this.roomLog(s, roomId))?.entry.floor ?? 1);
  }

  async trimHistory(roomId: string, limits: { maxCount: number; olderThan?: number }): Promise<number> {
    return this.exec((s) =>
      this.queue.run(`append/${roomId}`, async () => {
        const maxCount = count(limits.maxCount);
        const { olderThan } = limits;
        for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
          const log = await this.roomLog(s, roomId);
          if (!log) return 0;
          const { entry } = log;
          const size = entry.seq - entry.floor + 1;
          let floor = entry.floor + Math.max(0, size - maxCount);
          if (olderThan !== undefined && !Number.isNaN(olderThan)) {
            // Walk up from the new floor while messages are older than the cutoff.
            scan: while (floor <= entry.seq) {
              const last = Math.min(entry.seq, floor + READ_BATCH - 1);
              const recs = await this.records(s, roomId, entry.inc, floor, last);
              if (recs.length === 0) break;
              for (const m of recs) {
                if (m.seq !== floor || timestampMs(m.timestamp) >= olderThan) break scan;
                floor++;
              }
            }
          }
          if (floor === entry.floor) return 0;
          const next: RoomLogEntry = { seq: entry.seq, floor, inc: entry.inc };
          try {
            await s.kv.seqs.update(this.names.roomLog(roomId), utf8(encodeRoomLog(next)), log.revision);
          } catch (err) {
            if (!isConflict(err)) throw err;
            await casBackoff(attempt);
            continue;
          }
          this.later(() => this.dropRecords(s, roomId, entry.inc, entry.floor, floor));
          return floor - entry.floor;
        }
        throw this.contention('seqs', roomId);
      }),
    );
  }
}
