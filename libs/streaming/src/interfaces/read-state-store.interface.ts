/**
 * The read-state port: how far each user has read in each room (the highest
 * seq they marked read). Per user, not per connection. Stored with the room:
 * deleting the room drops its read state, and a room re-created with the same
 * id starts with none.
 */
export interface ReadStateStore {
  /**
   * Record that `userId` read `roomId` up to `seq`. The stored value only
   * grows: it becomes max(stored, seq), atomically, also when several nodes
   * race. Returns the stored value after the call (0 when the room does not
   * exist: nothing is stored then).
   */
  markRead(roomId: string, userId: string, seq: number): Promise<number>;
  /** The stored value of each of `roomIds` for `userId`; 0 for rooms never marked (or unknown). */
  readSeqs(userId: string, roomIds: string[]): Promise<Record<string, number>>;
}
