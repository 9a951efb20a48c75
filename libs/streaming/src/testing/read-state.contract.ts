/**
 * The {@link ReadStateStore} contract: per user and room, the highest seq
 * marked read, kept as a max (atomically), dropped with the room.
 */
import type { ReadStateStore, RoomStore } from '../interfaces';
import { newRoom, uid, useSubject, type ContractSubjectFactory } from './contract-helpers';

/**
 * What the read-state suite tests: a {@link ReadStateStore} that also creates
 * and deletes the rooms it keeps read state for (a whole backend).
 */
export type ReadStateStoreContractSubject = ReadStateStore & Pick<RoomStore, 'createRoom' | 'deleteRoom'>;

/**
 * Declares the behaviour every {@link ReadStateStore} must show, against a fresh
 * subject per test (`connect()`ed before and `close()`d after it, when it has them).
 */
export function describeReadStateStoreContract(
  name: string,
  factory: ContractSubjectFactory<ReadStateStoreContractSubject>,
): void {
  describe(`ReadStateStore contract: ${name}`, () => {
    declareReadStateStoreTests(useSubject(factory));
  });
}

/** The read-state store's tests, in the current `describe`, against `subject()`. */
export function declareReadStateStoreTests(subject: () => ReadStateStoreContractSubject): void {
  describe('read state', () => {
    it('is 0 for rooms never marked and for unknown rooms; marking an unknown room stores nothing', async () => {
      const store = subject();
      const { room } = await newRoom(store);
      const unknown = uid('no-room');
      const user = uid('user');
      expect(await store.readSeqs(user, [room.id, unknown])).toEqual({ [room.id]: 0, [unknown]: 0 });
      expect(await store.markRead(unknown, user, 5)).toBe(0);
      expect(await store.readSeqs(user, [unknown])).toEqual({ [unknown]: 0 });
      expect(await store.readSeqs(user, [])).toEqual({});
    });

    it('keeps the max: a lower seq is ignored; per user and per room', async () => {
      const store = subject();
      const { room } = await newRoom(store);
      const { room: other } = await newRoom(store);
      const [a, b] = [uid('user'), uid('user')];
      expect(await store.markRead(room.id, a, 5)).toBe(5);
      expect(await store.markRead(room.id, a, 3)).toBe(5);
      expect(await store.markRead(room.id, a, 5)).toBe(5);
      expect(await store.markRead(room.id, a, 0)).toBe(5);
      expect(await store.markRead(room.id, a, 9)).toBe(9);
      expect(await store.markRead(other.id, a, 2)).toBe(2);
      expect(await store.markRead(room.id, b, 1)).toBe(1);
      expect(await store.readSeqs(a, [room.id, other.id])).toEqual({ [room.id]: 9, [other.id]: 2 });
      expect(await store.readSeqs(b, [room.id, other.id])).toEqual({ [room.id]: 1, [other.id]: 0 });
    });

    it('concurrent marks end at the max of them all', async () => {
      const store = subject();
      const { room } = await newRoom(store);
      const user = uid('user');
      // 1..30 in a scrambled order, all at once.
      const marks = Array.from({ length: 30 }, (_, i) => ((i * 7) % 30) + 1);
      const results = await Promise.all(marks.map((seq) => store.markRead(room.id, user, seq)));
      results.forEach((stored, i) => expect(stored).toBeGreaterThanOrEqual(marks[i]));
      expect(await store.readSeqs(user, [room.id])).toEqual({ [room.id]: 30 });
      expect(await store.markRead(room.id, user, 29)).toBe(30);
    });

    it('is dropped with the room: a room re-created with the same id starts at 0', async () => {
      const store = subject();
      const { room } = await newRoom(store);
      const user = uid('user');
      await store.markRead(room.id, user, 7);
      expect(await store.deleteRoom(room.id)).toBe(true);
      expect(await store.readSeqs(user, [room.id])).toEqual({ [room.id]: 0 });
      await newRoom(store, { id: room.id });
      expect(await store.readSeqs(user, [room.id])).toEqual({ [room.id]: 0 });
      expect(await store.markRead(room.id, user, 2)).toBe(2);
    });
  });
}
