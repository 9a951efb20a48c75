import type { ReadStateStore } from '../../interfaces';
import { RedisBroker } from './redis-broker';
import { count } from './redis-core';
import { MARK_READ } from './scripts/read-state-scripts';

/**
 * The read state of the Redis backend (layer on {@link RedisBroker}): one hash
 * per room, `{r:<roomId>}:reads` (userId -> highest seq read), in the room's
 * hash-tagged keyspace, so the max is one script on the room's slot (atomic
 * whatever node races it) and the room's create/delete scripts drop it with
 * the room.
 */
export abstract class RedisReadState extends RedisBroker implements ReadStateStore {
  async markRead(roomId: string, userId: string, seq: number): Promise<number> {
    const k = this.keys.room(roomId);
    return Number(await this.run(MARK_READ, [k.room, k.reads], [userId, count(seq)]));
  }

  async readSeqs(userId: string, roomIds: string[]): Promise<Record<string, number>> {
    // One HGET per room: each room is on its own slot (sent together, one round trip on a standalone server).
    const values = await Promise.all(
      roomIds.map((roomId) => this.exec((c) => c.hget(this.keys.room(roomId).reads, userId))),
    );
    const out: Record<string, number> = {};
    roomIds.forEach((roomId, i) => (out[roomId] = Number(values[i] ?? 0) || 0));
    return out;
  }
}
