import type { ServerEnvelope, WireMessage } from '@nest-streaming/protocol';
import type { ClientEmitter } from './events';
import { isRecord } from './util';

/**
 * Where the client is in each room: the last seq it delivered (the de-duplication mark) and
 * the newest seq the app loaded from history. A resume starts from these. Every server event
 * reaches listeners through {@link RoomCursors.deliver}, which keeps them current.
 */
export class RoomCursors {
  /** Last seq delivered through `message`, per room (the de-duplication mark). */
  private readonly lastSeq = new Map<string, number>();
  /** Seq known to be held by the app without a delivered message (history pages): resume starts there. */
  private readonly floor = new Map<string, number>();

  constructor(private readonly emitter: ClientEmitter) {}

  /** Last seq delivered per room. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.lastSeq);
  }

  /** Last seq delivered in `room` (undefined when none). */
  last(room: string): number | undefined {
    return this.lastSeq.get(room);
  }

  /** Deliver one server event to listeners (messages de-duplicated by seq). */
  deliver(env: ServerEnvelope, noJumpRooms?: ReadonlySet<string>): void {
    const data = env.data;
    if (env.type === 'message') {
      if (!isRecord(data)) return;
      const m = data as unknown as WireMessage;
      if (typeof m.room_id !== 'string' || typeof m.seq !== 'number') return;
      const last = this.lastSeq.get(m.room_id);
      if (last !== undefined && m.seq <= last) return;
      if (last !== undefined && m.seq > last + 1 && !noJumpRooms?.has(m.room_id)) {
        const floor = this.floor.get(m.room_id);
        if (floor === undefined || m.seq > floor + 1) {
          this.emitter.emit('gap', { room_id: m.room_id, reason: 'seq_jump', last_seq: last });
        }
      }
      this.lastSeq.set(m.room_id, m.seq);
    } else if ((env.type === 'room_left' || env.type === 'room_deleted') && isRecord(data)) {
      const room = data.room_id;
      if (typeof room === 'string') this.forget(room);
    } else if (env.type === 'room_created' && isRecord(data) && typeof data.room_id === 'string') {
      // A new room has no messages yet: resume it from 0.
      if (!this.lastSeq.has(data.room_id)) this.lastSeq.set(data.room_id, 0);
    }
    this.emitter.emit(env.type, data);
    this.emitter.emit('*', env);
  }

  /** Where each room's resume starts: the last delivered seq, or further when a history page went further. */
  resumePoints(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [room, seq] of this.lastSeq) out[room] = seq;
    for (const [room, seq] of this.floor) if (out[room] === undefined || seq > out[room]) out[room] = seq;
    return out;
  }

  /** Before a resume: messages delivered before the disconnect up to the resume point count as seen. */
  markSeen(points: Record<string, number>): void {
    for (const [room, seq] of Object.entries(points)) this.lastSeq.set(room, seq);
  }

  /** After a `retention` gap: carry on from the server's latest seq when it is beyond the delivered one. */
  skipTo(room: string, latest: number | undefined): void {
    if (typeof latest === 'number' && latest > (this.lastSeq.get(room) ?? -1)) this.lastSeq.set(room, latest);
  }

  /** Stop tracking a room: it is no longer resumed. */
  forget(room: string): void {
    this.lastSeq.delete(room);
    this.floor.delete(room);
  }

  /** A history page the app loaded: its newest seq becomes the room's resume point if it is further. */
  noteHistory(roomId: string, messages: WireMessage[] | undefined): void {
    if (!Array.isArray(messages)) return;
    let max = -1;
    for (const m of messages) if (typeof m?.seq === 'number' && m.seq > max) max = m.seq;
    if (max >= 0 && max > (this.floor.get(roomId) ?? -1)) this.floor.set(roomId, max);
  }
}

/**
 * Held events in arrival order, except that each room's `message` events are
 * put in seq order: the i-th message slot of a room gets that room's i-th
 * smallest seq (duplicates stay; dispatch drops them).
 */
export function orderMessages(held: ServerEnvelope[]): ServerEnvelope[] {
  const byRoom = new Map<string, ServerEnvelope[]>();
  const roomOf = (env: ServerEnvelope): string | null => {
    if (env.type !== 'message' || !isRecord(env.data)) return null;
    const r = env.data.room_id;
    return typeof r === 'string' ? r : null;
  };
  for (const env of held) {
    const room = roomOf(env);
    if (room === null) continue;
    let list = byRoom.get(room);
    if (!list) byRoom.set(room, (list = []));
    list.push(env);
  }
  for (const list of byRoom.values()) {
    list.sort((a, b) => ((a.data as { seq: number }).seq ?? 0) - ((b.data as { seq: number }).seq ?? 0));
  }
  const next = new Map<string, number>();
  return held.map((env) => {
    const room = roomOf(env);
    if (room === null) return env;
    const i = next.get(room) ?? 0;
    next.set(room, i + 1);
    return byRoom.get(room)![i];
  });
}
