import type { ReadStateStore } from '../../interfaces';
import { NatsBroker } from './nats-broker';
import { batched } from './nats-util';

/** A read-state value: tagged with the room's incarnation, so a leftover of a deleted room reads as 0. */
interface ReadValue {
  /** Room incarnation. */
  i: string;
  /** Highest seq read. */
  s: number;
}

/**
 * The read state of the NATS backend (layer on {@link NatsBroker}).
 *
 * Layout: bucket reads, `<room>.<user>` -> { room incarnation, highest seq
 * read }. Room-scoped like the invitations: deleteRoom purges `<room>.>`
 * (nats-rooms.ts). markRead is a compare-and-swap keeping the max, so two
 * nodes racing never lower it. A value written while the room was being
 * deleted could outlive the purge; it carries the old incarnation, so it reads
 * as 0 and the next mark in a re-created room replaces it.
 */
export abstract class NatsReadState extends NatsBroker implements ReadStateStore {
  async markRead(roomId: string, userId: string, seq: number): Promise<number> {
    return this.exec(async (s) => {
      const room = await this.liveRoom(s, roomId);
      if (!room) return 0;
      return this.cas<ReadValue, number>(s, 'reads', this.names.readState(roomId, userId), (cur) => {
        const current = cur && cur.i === room.inc ? cur.s : 0;
        if (seq <= current) return { result: current };
        return { result: seq, next: { i: room.inc, s: seq } };
      });
    });
  }

  async readSeqs(userId: string, roomIds: string[]): Promise<Record<string, number>> {
    return this.exec(async (s) => {
      // Two reads per room (the room's incarnation, the value), READ_BATCH rooms at a time.
      const seqs = await batched(roomIds, async (roomId) => {
        const [room, value] = await Promise.all([
          this.liveRoom(s, roomId),
          this.value<ReadValue>(s.kv.reads, this.names.readState(roomId, userId)),
        ]);
        return room && value && value.i === room.inc ? value.s : 0;
      });
      const out: Record<string, number> = {};
      roomIds.forEach((roomId, i) => (out[roomId] = seqs[i]));
      return out;
    });
  }
}
