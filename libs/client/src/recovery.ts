import type { ResumedEvent, ServerEnvelope } from '@nest-streaming/protocol';
import type { ChannelSubscriptions } from './channels';
import { orderMessages, type RoomCursors } from './cursors';
import type { StreamingClientError } from './errors';
import type { ClientEmitter } from './events';
import { errorOf, isRecord, type SendInternal } from './util';

/** The error codes that mean "this room is no longer yours": resume drops it. */
const MEMBERSHIP_CODES = new Set(['not_room_member', 'room_not_found', 'forbidden', 'banned']);

/** Event types never held back while a resume is in progress. */
const NOT_BUFFERED = new Set(['connected', 'resumed', 'heartbeat', 'ack', 'pong']);

/** What a resume found: the `resumed` data, rooms whose resume failed, rooms the server no longer has. */
export interface ResumeOutcome {
  resumed: ResumedEvent;
  failed: string[];
  gone: string[];
}

/**
 * Getting back where the client was after a reconnect: holds the events that arrive meanwhile,
 * re-subscribes the channels and resumes the rooms (WebSocket; over SSE the server replays by
 * itself), then reports gone rooms and gaps and delivers the held events in seq order.
 */
export class Recovery {
  /** Set between `connected` and the end of the resume: events are held here, then delivered in order. */
  private held: ServerEnvelope[] | null = null;

  constructor(
    private readonly emitter: ClientEmitter,
    private readonly cursors: RoomCursors,
    private readonly channels: ChannelSubscriptions,
    private readonly send: SendInternal,
  ) {}

  /** A recovery is in progress (events are being held). */
  get active(): boolean {
    return this.held !== null;
  }

  /** Start holding events. */
  begin(): void {
    this.held = [];
  }

  /** The connection ended: drop the held events. */
  abort(): void {
    this.held = null;
  }

  /** Hold `env` while recovering (true), unless it is never held back (false: handle it now). */
  hold(env: ServerEnvelope): boolean {
    if (!this.held || NOT_BUFFERED.has(env.type)) return false;
    this.held.push(env);
    return true;
  }

  /**
   * After a WebSocket reconnect: hold events, re-subscribe every channel, resume every room,
   * then call `done` with what the resume found, unless the attempt ended meanwhile (`live()`).
   */
  async resubscribeAndResume(live: () => boolean, done: (outcome: ResumeOutcome) => void): Promise<void> {
    this.held = [];
    const subscribing = this.channels.restore(this.send, live, this.emitter);
    const points = this.cursors.resumePoints();
    let outcome: ResumeOutcome = { resumed: { rooms: {} }, failed: [], gone: [] };
    if (Object.keys(points).length > 0) {
      // Messages delivered before the disconnect up to the resume point count as seen.
      this.cursors.markSeen(points);
      outcome = await this.resume(points, live);
    }
    await Promise.all(subscribing);
    if (!live()) return;
    done(outcome);
  }

  /**
   * The resume is done: forget the rooms that are gone or no longer ours, report them and the
   * gaps, deliver the held events in seq order.
   */
  finish(resumed: ResumedEvent, resumeFailed: string[], alsoGone: string[] = []): void {
    const held = this.held ?? [];
    this.held = null;
    const gone = new Set([...alsoGone, ...(Array.isArray(resumed.gone) ? resumed.gone : [])]);
    const failed = [...resumeFailed];
    for (const [room, code] of Object.entries(isRecord(resumed.errors) ? resumed.errors : {})) {
      // `room_not_found` is a room the server no longer has (servers without `gone` say only this).
      if (code === 'room_not_found') gone.add(room);
      else if (MEMBERSHIP_CODES.has(code)) this.cursors.forget(room);
      else failed.push(room);
    }
    for (const room of gone) this.cursors.forget(room);
    const gaps = new Set(resumed.gaps ?? []);
    this.emitter.emit('resumed', resumed);
    this.emitter.emit('*', { type: 'resumed', data: resumed });
    if (gone.size > 0) this.emitter.emit('rooms_gone', { room_ids: [...gone] });
    for (const room of gaps) {
      this.emitter.emit('gap', {
        room_id: room,
        reason: 'retention',
        last_seq: this.cursors.last(room),
        latest_seq: resumed.rooms?.[room],
      });
    }
    for (const room of failed) {
      this.emitter.emit('gap', { room_id: room, reason: 'resume_failed', last_seq: this.cursors.last(room) });
    }
    const noJump = new Set([...gaps, ...failed]);
    for (const env of orderMessages(held)) this.cursors.deliver(env, noJump);
    for (const room of gaps) this.cursors.skipTo(room, resumed.rooms?.[room]);
  }

  /** `resume` all rooms at once; when that fails, room by room (a room no longer ours must not block the others). */
  private async resume(points: Record<string, number>, live: () => boolean): Promise<ResumeOutcome> {
    try {
      const resumed = (await this.send('resume', { rooms: points })) as ResumedEvent;
      return { resumed, failed: [], gone: [] };
    } catch (err) {
      const e = errorOf(err);
      if (!live() || e.code === 'disconnected') return { resumed: { rooms: {} }, failed: [], gone: [] };
      const rooms = Object.keys(points);
      if (rooms.length === 1 || !MEMBERSHIP_CODES.has(e.code)) return this.resumeFailed(rooms, e);
    }
    // The whole request failed (servers without `resumed.errors` fail it for one bad room): room by room.
    const merged: ResumedEvent = { rooms: {}, gaps: [], errors: {} };
    const failed: string[] = [];
    const gone: string[] = [];
    for (const [room, seq] of Object.entries(points)) {
      if (!live()) break;
      try {
        const r = (await this.send('resume', { rooms: { [room]: seq } })) as ResumedEvent;
        Object.assign(merged.rooms, r.rooms);
        merged.gaps!.push(...(r.gaps ?? []));
        if (isRecord(r.errors)) Object.assign(merged.errors!, r.errors);
        if (Array.isArray(r.gone)) gone.push(...r.gone);
      } catch (err) {
        const e = errorOf(err);
        if (e.code === 'disconnected') break;
        const one = this.resumeFailed([room], e);
        failed.push(...one.failed);
        gone.push(...one.gone);
      }
    }
    return { resumed: merged, failed, gone };
  }

  /**
   * Rooms whose resume failed: forgotten when they are no longer ours (and reported as gone when
   * the server does not have them), otherwise reported as gaps.
   */
  private resumeFailed(rooms: string[], e: StreamingClientError): ResumeOutcome {
    if (MEMBERSHIP_CODES.has(e.code) && rooms.length === 1) {
      this.cursors.forget(rooms[0]);
      return { resumed: { rooms: {} }, failed: [], gone: e.code === 'room_not_found' ? [rooms[0]] : [] };
    }
    this.emitter.emit('error', { ...e.data, code: e.code, message: `resume failed: ${e.message}` });
    return { resumed: { rooms: {} }, failed: rooms, gone: [] };
  }
}
