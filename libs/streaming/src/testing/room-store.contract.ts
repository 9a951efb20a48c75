/**
 * The {@link RoomStore} contract: rooms, memberships (with their limits),
 * bans and mutes, invitations and the moderation log.
 */
import type { Broker, RoomRecord, RoomStore } from '../interfaces';
import {
  draftFor,
  memberRecord,
  newRoom,
  roomRecord,
  sorted,
  uid,
  useSubject,
  type ContractSubjectFactory,
} from './contract-helpers';
import { declareRoomModerationTests } from './room-moderation.contract';

/** The part of the {@link Broker} that keeps a room's messages. */
type RoomHistory = Pick<Broker, 'appendMessage' | 'getHistory' | 'getMessage'>;

/**
 * What the room store suite tests: a {@link RoomStore}. When it is also the
 * {@link Broker} keeping the rooms' history (a whole backend), the `deleteRoom`
 * tests check that the history goes with the room too.
 */
export type RoomStoreContractSubject = RoomStore & Partial<RoomHistory>;

/** True when the subject also keeps the rooms' history. */
const keepsHistory = (store: RoomStoreContractSubject): store is RoomStore & RoomHistory =>
  typeof store.appendMessage === 'function' &&
  typeof store.getHistory === 'function' &&
  typeof store.getMessage === 'function';

/**
 * Declares the behaviour every {@link RoomStore} must show, against a fresh
 * subject per test (`connect()`ed before and `close()`d after it, when it has them).
 */
export function describeRoomStoreContract(
  name: string,
  factory: ContractSubjectFactory<RoomStoreContractSubject>,
): void {
  describe(`RoomStore contract: ${name}`, () => {
    declareRoomStoreTests(useSubject(factory));
  });
}

/** The room store's tests, in the current `describe`, against `subject()`. */
export function declareRoomStoreTests(subject: () => RoomStoreContractSubject): void {
  describe('rooms', () => {
    it('createRoom stores the room and makes the owner a member with role owner', async () => {
      const store = subject();
      const { room, owner } = await newRoom(store);

      expect(await store.getRoom(room.id)).toEqual(room);
      const m = await store.getMember(room.id, owner);
      expect(m).toMatchObject({ userId: owner, role: 'owner' });
      expect(await store.listMembers(room.id)).toEqual([
        expect.objectContaining({ userId: owner, role: 'owner' }),
      ]);
      expect(await store.countMembers(room.id)).toBe(1);
      expect(await store.userRooms(owner)).toEqual([room.id]);
    });

    it('createRoom rejects a duplicate id and leaves the existing room untouched', async () => {
      const store = subject();
      const { room, owner } = await newRoom(store);
      const intruder = uid('intruder');

      await expect(
        store.createRoom(
          roomRecord({ id: room.id, name: 'other', owner: intruder }),
          memberRecord(intruder, 'owner'),
        ),
      ).rejects.toThrow();

      expect(await store.getRoom(room.id)).toEqual(room);
      expect((await store.listMembers(room.id)).map((m) => m.userId)).toEqual([owner]);
      expect(await store.getMember(room.id, intruder)).toBeNull();
      expect(await store.userRooms(intruder)).toEqual([]);
    });

    it('getRoom of an unknown id is null', async () => {
      const store = subject();
      expect(await store.getRoom(uid('nope'))).toBeNull();
    });

    it('updateRoom applies a patch, keeps the id, and persists', async () => {
      const store = subject();
      const { room } = await newRoom(store);
      const updated = await store.updateRoom(room.id, {
        name: 'renamed',
        description: 'new description',
        private: true,
        maxMembers: 10,
        metadata: { x: 'y' },
      });
      const expected: RoomRecord = {
        ...room,
        name: 'renamed',
        description: 'new description',
        private: true,
        maxMembers: 10,
        metadata: { x: 'y' },
      };
      expect(updated).toEqual(expected);
      expect(await store.getRoom(room.id)).toEqual(expected);

      expect(await store.updateRoom(room.id, { maxMembers: null })).toEqual({
        ...expected,
        maxMembers: null,
      });
      expect(await store.updateRoom(uid('nope'), { name: 'x' })).toBeNull();
      expect(await store.getRoom(room.id)).toEqual({ ...expected, maxMembers: null });
    });

    it('deleteRoom removes the room, its memberships, restrictions and history', async () => {
      const store = subject();
      const { room, owner } = await newRoom(store);
      const member = uid('user');
      expect(await store.addMember(room.id, memberRecord(member), {})).toBe('added');
      const msg = keepsHistory(store)
        ? await store.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 })
        : null;
      await store.setRestriction(room.id, {
        kind: 'ban',
        userId: uid('banned'),
        by: owner,
        reason: 'spam',
        at: new Date().toISOString(),
        until: null,
      });

      expect(await store.deleteRoom(room.id)).toBe(true);

      expect(await store.getRoom(room.id)).toBeNull();
      expect(await store.userRooms(owner)).toEqual([]);
      expect(await store.userRooms(member)).toEqual([]);
      expect(await store.getMember(room.id, member)).toBeNull();
      expect(await store.listMembers(room.id)).toEqual([]);
      expect(await store.countMembers(room.id)).toBe(0);
      expect(await store.listRestrictions(room.id)).toEqual([]);
      if (msg && keepsHistory(store)) {
        expect(await store.getHistory(room.id, { limit: 50 })).toEqual([]);
        expect(await store.getMessage(room.id, msg.id)).toBeNull();
      }
      expect((await store.listRooms()).map((r) => r.id)).not.toContain(room.id);

      expect(await store.deleteRoom(room.id)).toBe(false);
    });

    it('a room re-created with a deleted id starts clean', async () => {
      const store = subject();
      const { room, owner } = await newRoom(store);
      const member = uid('user');
      await store.addMember(room.id, memberRecord(member), {});
      if (keepsHistory(store)) await store.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
      await store.setRestriction(room.id, {
        kind: 'mute',
        userId: member,
        by: owner,
        reason: '',
        at: new Date().toISOString(),
        until: null,
      });
      await store.deleteRoom(room.id);

      const owner2 = uid('owner2');
      await store.createRoom(roomRecord({ id: room.id, owner: owner2 }), memberRecord(owner2, 'owner'));

      expect((await store.listMembers(room.id)).map((m) => m.userId)).toEqual([owner2]);
      if (keepsHistory(store)) expect(await store.getHistory(room.id, { limit: 50 })).toEqual([]);
      expect(await store.getRestriction(room.id, 'mute', member)).toBeNull();
      expect(await store.listRestrictions(room.id)).toEqual([]);
      expect(await store.userRooms(owner)).toEqual([]);
    });

    it('listRooms and countRooms reflect created and deleted rooms', async () => {
      const store = subject();
      const before = await store.countRooms();
      const { room: a } = await newRoom(store);
      const { room: b } = await newRoom(store, { maxMembers: 5, private: true });

      expect(await store.countRooms()).toBe(before + 2);
      const listed = await store.listRooms();
      expect(listed).toHaveLength(before + 2);
      expect(listed.find((r) => r.id === a.id)).toEqual(a);
      expect(listed.find((r) => r.id === b.id)).toEqual(b);

      await store.deleteRoom(a.id);
      expect(await store.countRooms()).toBe(before + 1);
      const ids = (await store.listRooms()).map((r) => r.id);
      expect(ids).not.toContain(a.id);
      expect(ids).toContain(b.id);
    });
  });

  describe('membership', () => {
    it("addMember answers 'added', then 'exists' for the same user", async () => {
      const store = subject();
      const { room } = await newRoom(store);
      const user = uid('user');
      const rec = memberRecord(user, 'moderator');

      expect(await store.addMember(room.id, rec, {})).toBe('added');
      expect(await store.getMember(room.id, user)).toEqual(rec);
      expect(await store.addMember(room.id, memberRecord(user, 'admin'), {})).toBe('exists');
      expect(await store.getMember(room.id, user)).toEqual(rec);
      expect(await store.countMembers(room.id)).toBe(2);
    });

    it("addMember answers 'no_room' for an unknown room", async () => {
      const store = subject();
      const user = uid('user');
      expect(await store.addMember(uid('nope'), memberRecord(user), {})).toBe('no_room');
      expect(await store.userRooms(user)).toEqual([]);
    });

    it("addMember answers 'full' once maxMembers (owner included) is reached", async () => {
      const store = subject();
      const { room } = await newRoom(store, { maxMembers: 3 });
      const [u1, u2, u3] = [uid('u1'), uid('u2'), uid('u3')];

      expect(await store.addMember(room.id, memberRecord(u1), {})).toBe('added');
      expect(await store.addMember(room.id, memberRecord(u2), {})).toBe('added');
      expect(await store.addMember(room.id, memberRecord(u3), {})).toBe('full');
      expect(await store.addMember(room.id, memberRecord(u1), {})).toBe('exists');
      expect(await store.getMember(room.id, u3)).toBeNull();
      expect(await store.userRooms(u3)).toEqual([]);
      expect(await store.countMembers(room.id)).toBe(3);

      await store.removeMember(room.id, u2);
      expect(await store.addMember(room.id, memberRecord(u3), {})).toBe('added');
    });

    it('addMember never overfills a room under concurrent joins', async () => {
      const store = subject();
      const { room } = await newRoom(store, { maxMembers: 5 });
      const users = Array.from({ length: 12 }, () => uid('u'));
      const results = await Promise.all(users.map((u) => store.addMember(room.id, memberRecord(u), {})));

      expect(results.filter((r) => r === 'added')).toHaveLength(4);
      expect(results.filter((r) => r === 'full')).toHaveLength(8);
      expect(await store.countMembers(room.id)).toBe(5);
      expect(await store.listMembers(room.id)).toHaveLength(5);
    });

    it("addMember answers 'user_limit' when the user already belongs to maxRoomsPerUser rooms", async () => {
      const store = subject();
      const user = uid('user');
      // One room the user owns (created) and one joined: both count.
      const { room: owned } = await newRoom(store, { owner: user });
      const { room: joined } = await newRoom(store);
      const { room: third } = await newRoom(store);
      expect(await store.addMember(joined.id, memberRecord(user), { maxRoomsPerUser: 2 })).toBe('added');

      expect(await store.addMember(third.id, memberRecord(user), { maxRoomsPerUser: 2 })).toBe('user_limit');
      expect(await store.getMember(third.id, user)).toBeNull();
      expect(sorted(await store.userRooms(user))).toEqual(sorted([owned.id, joined.id]));

      // Without a limit, or after leaving a room, joining works.
      expect(await store.addMember(third.id, memberRecord(user), { maxRoomsPerUser: 3 })).toBe('added');
      await store.removeMember(third.id, user);
      await store.removeMember(joined.id, user);
      expect(await store.addMember(third.id, memberRecord(user), { maxRoomsPerUser: 2 })).toBe('added');
      const { room: fourth } = await newRoom(store);
      expect(await store.addMember(fourth.id, memberRecord(user), {})).toBe('added');
      expect(await store.userRooms(user)).toHaveLength(3);
    });

    it('maxRoomsPerUser holds under concurrent joins', async () => {
      const store = subject();
      const user = uid('user');
      const rooms = await Promise.all(Array.from({ length: 6 }, () => newRoom(store)));
      const results = await Promise.all(
        rooms.map(({ room }) => store.addMember(room.id, memberRecord(user), { maxRoomsPerUser: 3 })),
      );
      expect(results.filter((r) => r === 'added')).toHaveLength(3);
      expect(results.filter((r) => r === 'user_limit')).toHaveLength(3);
      expect(await store.userRooms(user)).toHaveLength(3);
    });

    it('removeMember removes the membership once', async () => {
      const store = subject();
      const { room, owner } = await newRoom(store);
      const user = uid('user');
      await store.addMember(room.id, memberRecord(user), {});

      expect(await store.removeMember(room.id, user)).toBe(true);
      expect(await store.getMember(room.id, user)).toBeNull();
      expect(await store.userRooms(user)).toEqual([]);
      expect(await store.countMembers(room.id)).toBe(1);
      expect((await store.listMembers(room.id)).map((m) => m.userId)).toEqual([owner]);

      expect(await store.removeMember(room.id, user)).toBe(false);
      expect(await store.removeMember(uid('nope'), user)).toBe(false);
    });

    it('setMemberRole changes the role of a member only', async () => {
      const store = subject();
      const { room } = await newRoom(store);
      const user = uid('user');
      await store.addMember(room.id, memberRecord(user), {});

      expect(await store.setMemberRole(room.id, user, 'admin')).toBe(true);
      expect(await store.getMember(room.id, user)).toMatchObject({ userId: user, role: 'admin' });
      expect((await store.listMembers(room.id)).find((m) => m.userId === user)?.role).toBe('admin');

      const stranger = uid('stranger');
      expect(await store.setMemberRole(room.id, stranger, 'admin')).toBe(false);
      expect(await store.getMember(room.id, stranger)).toBeNull();
      expect(await store.setMemberRole(uid('nope'), user, 'admin')).toBe(false);
    });

    it('listMembers and countMembers list every member with its role', async () => {
      const store = subject();
      const { room, owner } = await newRoom(store);
      const a = memberRecord(uid('a'), 'admin');
      const b = memberRecord(uid('b'), 'moderator');
      const c = memberRecord(uid('c'), 'member');
      for (const m of [a, b, c]) await store.addMember(room.id, m, {});

      const members = await store.listMembers(room.id);
      expect(members).toHaveLength(4);
      const byId = new Map(members.map((m) => [m.userId, m]));
      expect(byId.get(owner)?.role).toBe('owner');
      expect(byId.get(a.userId)).toEqual(a);
      expect(byId.get(b.userId)).toEqual(b);
      expect(byId.get(c.userId)).toEqual(c);
      expect(await store.countMembers(room.id)).toBe(4);

      expect(await store.listMembers(uid('nope'))).toEqual([]);
      expect(await store.countMembers(uid('nope'))).toBe(0);
    });

    it('userRooms lists exactly the rooms a user is a member of', async () => {
      const store = subject();
      const user = uid('user');
      const { room: r1 } = await newRoom(store);
      const { room: r2 } = await newRoom(store);
      await newRoom(store); // not joined
      const { room: r4 } = await newRoom(store, { owner: user });
      await store.addMember(r1.id, memberRecord(user), {});
      await store.addMember(r2.id, memberRecord(user), {});

      expect(sorted(await store.userRooms(user))).toEqual(sorted([r1.id, r2.id, r4.id]));
      expect(await store.userRooms(uid('nobody'))).toEqual([]);
    });
  });

  declareRoomModerationTests(subject);
}
