import type { ReadStateStore } from '../../interfaces';
import { LocalBroker } from './local-broker';

/**
 * The local backend's read state (layer 4, on {@link LocalBroker}). In memory
 * mode each room's `reads` map (user -> highest seq read) lives with the room,
 * so deleting the room drops it. With a store it lives in the store's `reads`
 * table (dropped with the room), and the max is taken there, in one
 * statement. Every call is synchronous, so the max is atomic in this process.
 */
export class LocalReadState extends LocalBroker implements ReadStateStore {
  async markRead(roomId: string, userId: string, seq: number): Promise<number> {
    const r = this.room(roomId);
    if (!r) return 0;
    if (this.persistence) return this.persistence.markRead(roomId, userId, seq);
    const reads = (r.reads ??= new Map<string, number>());
    const current = reads.get(userId) ?? 0;
    if (seq <= current) return current;
    reads.set(userId, seq);
    return seq;
  }

  async readSeqs(userId: string, roomIds: string[]): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const roomId of roomIds) {
      out[roomId] = this.persistence
        ? this.persistence.readSeq(roomId, userId)
        : (this.room(roomId)?.reads?.get(userId) ?? 0);
    }
    return out;
  }
}
