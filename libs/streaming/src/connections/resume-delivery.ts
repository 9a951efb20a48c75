import type { HistoryService } from '../history/history.service';
import { Connection } from './connection';
import { ErrorCode } from '@nest-streaming/protocol';
import { StreamingError } from '../protocol/streaming-error';

/** True for a held `message` envelope whose seq the replay already covered. */
function isReplayedMessage(envelope: string, latestReplayed: number): boolean {
  if (!envelope.startsWith('{"type":"message"')) return false;
  const seq = (JSON.parse(envelope) as { data: { seq: number } }).data.seq;
  return seq <= latestReplayed;
}

/**
 * Replay missed messages to one connection without breaking seq order: live
 * events of the rooms are held, the missed messages are written page by page
 * as the reader takes them (memory for a page, not for the whole replay),
 * then `resumed`, then the held events (those the replay covered are
 * dropped). Rooms that cannot be resumed (no longer a member, unknown) are
 * listed in `resumed.errors`, and those that no longer exist in
 * `resumed.gone` too; when no room can be resumed for another reason the
 * whole request fails. Shared by the WebSocket `resume` request and SSE `Last-Event-ID`.
 * Resolves with the `resumed` data, or null when the connection closed first.
 */
export async function resumeConnection(
  conn: Connection,
  history: Pick<HistoryService, 'planResume' | 'replayPage'>,
  rooms: Record<string, number>,
): Promise<Record<string, unknown> | null> {
  const roomIds = Object.keys(rooms);
  for (const room of roomIds) conn.hold(room);
  try {
    const p = await history.planResume(conn.userId, rooms);
    const failed = Object.entries(p.errors);
    const gone = failed.filter(([, code]) => code === 'room_not_found').map(([room]) => room);
    const refused = failed.filter(([, code]) => code !== 'room_not_found');
    if (refused.length > 0 && Object.keys(p.rooms).length === 0) {
      // Nothing could be resumed: answer as a plain error, like any refused request.
      const [room, code] = refused[0];
      throw new StreamingError(code as ErrorCode, `cannot resume room ${room}: ${code.replace(/_/g, ' ')}`);
    }
    for (const target of p.replay) {
      let after = target.after;
      while (after < target.latest) {
        const room = conn.whenWritable();
        if (room) await room;
        if (conn.closed) return null;
        const page = await history.replayPage(target, after);
        if (page === null) {
          p.gaps.push(target.roomId); // retention dropped the rest meanwhile: the client reloads
          break;
        }
        for (const m of page) conn.sendEvent('message', m);
        after = page[page.length - 1].seq;
      }
    }
    const resumed: Record<string, unknown> = { rooms: p.rooms };
    if (p.gaps.length > 0) resumed.gaps = p.gaps;
    if (Object.keys(p.errors).length > 0) resumed.errors = p.errors;
    // Rooms the server no longer has (deleted, or an in-memory store restarted): the client forgets them.
    if (gone.length > 0) resumed.gone = gone;
    conn.sendEvent('resumed', resumed);
    for (const room of roomIds) {
      for (const env of conn.release(room)) {
        if (!isReplayedMessage(env, p.rooms[room] ?? 0)) conn.send(env);
      }
    }
    return resumed;
  } finally {
    for (const room of roomIds) for (const env of conn.release(room)) conn.send(env);
  }
}
