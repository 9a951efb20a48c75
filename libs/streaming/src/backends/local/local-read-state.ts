import type { ReadStateStore } from '../../interfaces';
import { LocalBroker } from './local-broker';

/**
 * The local backend's read state (layer 4, on {@link LocalBroker}): each
 * room's `reads` map (user -> highest seq read) lives in the room's in-memory
 * state, so deleting the room drops it, and is written through to the
 * {@link LocalPersistence} (disk first, then memory). Every call is a
 * synchronous read-modify-write, so the max is atomic in this process.
 */
export class LocalReadState extends LocalBroker implements ReadStateStore {
  async markRead(roomId: string, userId: string, seq: number): Promise<number> {
    const r = this.room(roomId);
    if (!r) return 0;
    const reads = (r.reads ??= new Map<string, number>());
    const current = reads.get(userId) ?? 0;
    if (seq <= current) return current;
    this.persistence?.saveReadSeq(roomId, userId, seq);
    reads.set(userId, seq);
    return seq;
  }

  async readSeqs(userId: string, roomIds: string[]): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const roomId of roomIds) out[roomId] = this.room(roomId)?.reads?.get(userId) ?? 0;
    return out;
  }
}
