import type { ResumePlan } from '../history/history.service';
import { Connection } from './connection';
import { ErrorCode } from '../protocol/error-codes';
import { StreamingError } from '../protocol/streaming-error';

/** True for a held `message` envelope whose seq the replay already covered. */
function isReplayedMessage(envelope: string, latestReplayed: number): boolean {
  if (!envelope.startsWith('{"type":"message"')) return false;
  const seq = (JSON.parse(envelope) as { data: { seq: number } }).data.seq;
  return seq <= latestReplayed;
}

/**
 * Replay missed messages to one connection without breaking seq order: live
 * events of the rooms are held while `plan()` runs, the replay is queued, then
 * `resumed`, then the held events (those the replay covered are dropped).
 * Rooms that cannot be resumed (no longer a member, unknown) are listed in
 * `resumed.errors`; when no room can be resumed the whole request fails.
 * Shared by the WebSocket `resume` request and SSE `Last-Event-ID`.
 */
export async function resumeConnection(
  conn: Connection,
  roomIds: string[],
  plan: () => Promise<ResumePlan>,
): Promise<Record<string, unknown>> {
  for (const room of roomIds) conn.hold(room);
  try {
    const p = await plan();
    const failed = Object.entries(p.errors);
    if (failed.length > 0 && Object.keys(p.rooms).length === 0) {
      // Nothing could be resumed: answer as a plain error, like any refused request.
      const [room, code] = failed[0];
      throw new StreamingError(code as ErrorCode, `cannot resume room ${room}: ${code.replace(/_/g, ' ')}`);
    }
    for (const m of p.replay) conn.sendEvent('message', m);
    const resumed: Record<string, unknown> = { rooms: p.rooms };
    if (p.gaps.length > 0) resumed.gaps = p.gaps;
    if (Object.keys(p.errors).length > 0) resumed.errors = p.errors;
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
