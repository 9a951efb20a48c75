import { randomUUID } from 'node:crypto';
import { messageToWire } from '../protocol/wire';
import {
  MemberRecord,
  MessageDraft,
  NodeInfo,
  PresenceRecord,
  Restriction,
  RoomRecord,
  RoomRole,
  StoredMessage,
  StreamingBackend,
} from '../interfaces';

/** Options of {@link describeBackendContract}. */
export interface BackendContractOptions {
  /** How long to wait before asserting that nothing (more) arrived on a topic. Default 50 ms. */
  settleMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Retry `fn` (an assertion, or anything that throws while the condition does
 * not hold yet) until it passes or `timeoutMs` elapses; rethrows the last error.
 */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 2000, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(intervalMs);
    }
  }
}

const uid = (prefix: string): string => `${prefix}-${randomUUID()}`;

function roomRecord(overrides: Partial<RoomRecord> = {}): RoomRecord {
  const id = overrides.id ?? uid('room');
  return {
    id,
    name: `Room ${id}`,
    description: 'a test room',
    private: false,
    owner: overrides.owner ?? uid('owner'),
    maxMembers: null,
    createdAt: new Date().toISOString(),
    metadata: { topic: 'tests', nested: { a: 1, list: [1, 2, 3] } },
    ...overrides,
  };
}

function memberRecord(userId: string, role: RoomRole = 'member'): MemberRecord {
  return { userId, role, joinedAt: new Date().toISOString() };
}

function draftFor(roomId: string, overrides: Partial<MessageDraft> = {}): MessageDraft {
  return {
    id: randomUUID(),
    roomId,
    userId: uid('author'),
    content: `hello ${randomUUID()}`,
    metadata: { client: 'jest', nested: { n: 1 } },
    timestamp: new Date().toISOString(),
    reactions: {},
    ...overrides,
  };
}

const seqs = (messages: StoredMessage[]): number[] => messages.map((m) => m.seq);
const sorted = (xs: string[]): string[] => [...xs].sort();

/**
 * Declares the behaviour every {@link StreamingBackend} must show. Each backend's
 * spec calls this with a factory returning a fresh, unconnected backend.
 * Ids are random so that a shared Redis / NATS server can be reused across tests.
 */
export function describeBackendContract(
  name: string,
  factory: () => Promise<StreamingBackend>,
  opts: BackendContractOptions = {},
): void {
  const settleMs = opts.settleMs ?? 50;

  describe(`StreamingBackend contract: ${name}`, () => {
    let backend: StreamingBackend;

    beforeEach(async () => {
      backend = await factory();
      await backend.connect();
    });

    afterEach(async () => {
      await backend?.close();
    });

    /** Create a room owned by a fresh user; returns the room and its owner id. */
    async function newRoom(
      overrides: Partial<RoomRecord> = {},
    ): Promise<{ room: RoomRecord; owner: string }> {
      const owner = overrides.owner ?? uid('owner');
      const room = roomRecord({ ...overrides, owner });
      await backend.createRoom(room, memberRecord(owner, 'owner'));
      return { room, owner };
    }

    /** Subscribe a collecting handler to `topic`. */
    async function collect(topic: string): Promise<{ payloads: string[]; topics: string[] }> {
      const box = { payloads: [] as string[], topics: [] as string[] };
      await backend.subscribe(topic, (payload, t) => {
        box.payloads.push(payload);
        box.topics.push(t);
      });
      return box;
    }

    describe('lifecycle', () => {
      it('ping resolves while connected', async () => {
        await expect(backend.ping()).resolves.toBeUndefined();
      });
    });

    describe('pub/sub', () => {
      it('delivers every payload exactly once, in publish order, to the topic handler', async () => {
        const topic = uid('topic');
        const box = await collect(topic);
        const sent = ['one', '{"type":"x","data":{"k":"é ✓"}}', 'three'];
        for (const p of sent) await backend.publish(topic, p);

        await eventually(() => expect(box.payloads).toHaveLength(sent.length));
        await sleep(settleMs);
        expect(box.payloads).toEqual(sent);
        expect(box.topics).toEqual(sent.map(() => topic));
      });

      it('does not deliver to the handlers of other topics', async () => {
        const a = uid('topic-a');
        const b = uid('topic-b');
        const boxA = await collect(a);
        const boxB = await collect(b);

        await backend.publish(a, 'for-a');
        await backend.publish(uid('topic-nobody'), 'for-nobody');

        await eventually(() => expect(boxA.payloads).toEqual(['for-a']));
        await sleep(settleMs);
        expect(boxA.payloads).toEqual(['for-a']);
        expect(boxB.payloads).toEqual([]);

        await backend.publish(b, 'for-b');
        await eventually(() => expect(boxB.payloads).toEqual(['for-b']));
        await sleep(settleMs);
        expect(boxA.payloads).toEqual(['for-a']);
      });

      it('unsubscribe stops delivery', async () => {
        const topic = uid('topic');
        const other = uid('topic-other');
        const box = await collect(topic);
        const otherBox = await collect(other);

        await backend.publish(topic, 'before');
        await eventually(() => expect(box.payloads).toEqual(['before']));

        await backend.unsubscribe(topic);
        await backend.publish(topic, 'after');
        await backend.publish(other, 'still-subscribed');

        await eventually(() => expect(otherBox.payloads).toEqual(['still-subscribed']));
        await sleep(settleMs);
        expect(box.payloads).toEqual(['before']);
      });
    });

    describe('rooms', () => {
      it('createRoom stores the room and makes the owner a member with role owner', async () => {
        const { room, owner } = await newRoom();

        expect(await backend.getRoom(room.id)).toEqual(room);
        const m = await backend.getMember(room.id, owner);
        expect(m).toMatchObject({ userId: owner, role: 'owner' });
        expect(await backend.listMembers(room.id)).toEqual([
          expect.objectContaining({ userId: owner, role: 'owner' }),
        ]);
        expect(await backend.countMembers(room.id)).toBe(1);
        expect(await backend.userRooms(owner)).toEqual([room.id]);
      });

      it('createRoom rejects a duplicate id and leaves the existing room untouched', async () => {
        const { room, owner } = await newRoom();
        const intruder = uid('intruder');

        await expect(
          backend.createRoom(
            roomRecord({ id: room.id, name: 'other', owner: intruder }),
            memberRecord(intruder, 'owner'),
          ),
        ).rejects.toThrow();

        expect(await backend.getRoom(room.id)).toEqual(room);
        expect((await backend.listMembers(room.id)).map((m) => m.userId)).toEqual([owner]);
        expect(await backend.getMember(room.id, intruder)).toBeNull();
        expect(await backend.userRooms(intruder)).toEqual([]);
      });

      it('getRoom of an unknown id is null', async () => {
        expect(await backend.getRoom(uid('nope'))).toBeNull();
      });

      it('updateRoom applies a patch, keeps the id, and persists', async () => {
        const { room } = await newRoom();
        const updated = await backend.updateRoom(room.id, {
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
        expect(await backend.getRoom(room.id)).toEqual(expected);

        expect(await backend.updateRoom(room.id, { maxMembers: null })).toEqual({
          ...expected,
          maxMembers: null,
        });
        expect(await backend.updateRoom(uid('nope'), { name: 'x' })).toBeNull();
        expect(await backend.getRoom(room.id)).toEqual({ ...expected, maxMembers: null });
      });

      it('deleteRoom removes the room, its memberships, restrictions and history', async () => {
        const { room, owner } = await newRoom();
        const member = uid('user');
        expect(await backend.addMember(room.id, memberRecord(member), {})).toBe('added');
        const msg = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        await backend.setRestriction(room.id, {
          kind: 'ban',
          userId: uid('banned'),
          by: owner,
          reason: 'spam',
          at: new Date().toISOString(),
          until: null,
        });

        expect(await backend.deleteRoom(room.id)).toBe(true);

        expect(await backend.getRoom(room.id)).toBeNull();
        expect(await backend.userRooms(owner)).toEqual([]);
        expect(await backend.userRooms(member)).toEqual([]);
        expect(await backend.getMember(room.id, member)).toBeNull();
        expect(await backend.listMembers(room.id)).toEqual([]);
        expect(await backend.countMembers(room.id)).toBe(0);
        expect(await backend.listRestrictions(room.id)).toEqual([]);
        expect(await backend.getHistory(room.id, { limit: 50 })).toEqual([]);
        expect(await backend.getMessage(room.id, msg.id)).toBeNull();
        expect((await backend.listRooms()).map((r) => r.id)).not.toContain(room.id);

        expect(await backend.deleteRoom(room.id)).toBe(false);
      });

      it('a room re-created with a deleted id starts clean', async () => {
        const { room, owner } = await newRoom();
        const member = uid('user');
        await backend.addMember(room.id, memberRecord(member), {});
        await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        await backend.setRestriction(room.id, {
          kind: 'mute',
          userId: member,
          by: owner,
          reason: '',
          at: new Date().toISOString(),
          until: null,
        });
        await backend.deleteRoom(room.id);

        const owner2 = uid('owner2');
        await backend.createRoom(roomRecord({ id: room.id, owner: owner2 }), memberRecord(owner2, 'owner'));

        expect((await backend.listMembers(room.id)).map((m) => m.userId)).toEqual([owner2]);
        expect(await backend.getHistory(room.id, { limit: 50 })).toEqual([]);
        expect(await backend.getRestriction(room.id, 'mute', member)).toBeNull();
        expect(await backend.listRestrictions(room.id)).toEqual([]);
        expect(await backend.userRooms(owner)).toEqual([]);
      });

      it('listRooms and countRooms reflect created and deleted rooms', async () => {
        const before = await backend.countRooms();
        const { room: a } = await newRoom();
        const { room: b } = await newRoom({ maxMembers: 5, private: true });

        expect(await backend.countRooms()).toBe(before + 2);
        const listed = await backend.listRooms();
        expect(listed).toHaveLength(before + 2);
        expect(listed.find((r) => r.id === a.id)).toEqual(a);
        expect(listed.find((r) => r.id === b.id)).toEqual(b);

        await backend.deleteRoom(a.id);
        expect(await backend.countRooms()).toBe(before + 1);
        const ids = (await backend.listRooms()).map((r) => r.id);
        expect(ids).not.toContain(a.id);
        expect(ids).toContain(b.id);
      });
    });

    describe('membership', () => {
      it("addMember answers 'added', then 'exists' for the same user", async () => {
        const { room } = await newRoom();
        const user = uid('user');
        const rec = memberRecord(user, 'moderator');

        expect(await backend.addMember(room.id, rec, {})).toBe('added');
        expect(await backend.getMember(room.id, user)).toEqual(rec);
        expect(await backend.addMember(room.id, memberRecord(user, 'admin'), {})).toBe('exists');
        expect(await backend.getMember(room.id, user)).toEqual(rec);
        expect(await backend.countMembers(room.id)).toBe(2);
      });

      it("addMember answers 'no_room' for an unknown room", async () => {
        const user = uid('user');
        expect(await backend.addMember(uid('nope'), memberRecord(user), {})).toBe('no_room');
        expect(await backend.userRooms(user)).toEqual([]);
      });

      it("addMember answers 'full' once maxMembers (owner included) is reached", async () => {
        const { room } = await newRoom({ maxMembers: 3 });
        const [u1, u2, u3] = [uid('u1'), uid('u2'), uid('u3')];

        expect(await backend.addMember(room.id, memberRecord(u1), {})).toBe('added');
        expect(await backend.addMember(room.id, memberRecord(u2), {})).toBe('added');
        expect(await backend.addMember(room.id, memberRecord(u3), {})).toBe('full');
        expect(await backend.addMember(room.id, memberRecord(u1), {})).toBe('exists');
        expect(await backend.getMember(room.id, u3)).toBeNull();
        expect(await backend.userRooms(u3)).toEqual([]);
        expect(await backend.countMembers(room.id)).toBe(3);

        await backend.removeMember(room.id, u2);
        expect(await backend.addMember(room.id, memberRecord(u3), {})).toBe('added');
      });

      it('addMember never overfills a room under concurrent joins', async () => {
        const { room } = await newRoom({ maxMembers: 5 });
        const users = Array.from({ length: 12 }, () => uid('u'));
        const results = await Promise.all(users.map((u) => backend.addMember(room.id, memberRecord(u), {})));

        expect(results.filter((r) => r === 'added')).toHaveLength(4);
        expect(results.filter((r) => r === 'full')).toHaveLength(8);
        expect(await backend.countMembers(room.id)).toBe(5);
        expect(await backend.listMembers(room.id)).toHaveLength(5);
      });

      it("addMember answers 'user_limit' when the user already belongs to maxRoomsPerUser rooms", async () => {
        const user = uid('user');
        // One room the user owns (created) and one joined: both count.
        const { room: owned } = await newRoom({ owner: user });
        const { room: joined } = await newRoom();
        const { room: third } = await newRoom();
        expect(await backend.addMember(joined.id, memberRecord(user), { maxRoomsPerUser: 2 })).toBe('added');

        expect(await backend.addMember(third.id, memberRecord(user), { maxRoomsPerUser: 2 })).toBe(
          'user_limit',
        );
        expect(await backend.getMember(third.id, user)).toBeNull();
        expect(sorted(await backend.userRooms(user))).toEqual(sorted([owned.id, joined.id]));

        // Without a limit, or after leaving a room, joining works.
        expect(await backend.addMember(third.id, memberRecord(user), { maxRoomsPerUser: 3 })).toBe('added');
        await backend.removeMember(third.id, user);
        await backend.removeMember(joined.id, user);
        expect(await backend.addMember(third.id, memberRecord(user), { maxRoomsPerUser: 2 })).toBe('added');
        const { room: fourth } = await newRoom();
        expect(await backend.addMember(fourth.id, memberRecord(user), {})).toBe('added');
        expect(await backend.userRooms(user)).toHaveLength(3);
      });

      it('maxRoomsPerUser holds under concurrent joins', async () => {
        const user = uid('user');
        const rooms = await Promise.all(Array.from({ length: 6 }, () => newRoom()));
        const results = await Promise.all(
          rooms.map(({ room }) => backend.addMember(room.id, memberRecord(user), { maxRoomsPerUser: 3 })),
        );
        expect(results.filter((r) => r === 'added')).toHaveLength(3);
        expect(results.filter((r) => r === 'user_limit')).toHaveLength(3);
        expect(await backend.userRooms(user)).toHaveLength(3);
      });

      it('removeMember removes the membership once', async () => {
        const { room, owner } = await newRoom();
        const user = uid('user');
        await backend.addMember(room.id, memberRecord(user), {});

        expect(await backend.removeMember(room.id, user)).toBe(true);
        expect(await backend.getMember(room.id, user)).toBeNull();
        expect(await backend.userRooms(user)).toEqual([]);
        expect(await backend.countMembers(room.id)).toBe(1);
        expect((await backend.listMembers(room.id)).map((m) => m.userId)).toEqual([owner]);

        expect(await backend.removeMember(room.id, user)).toBe(false);
        expect(await backend.removeMember(uid('nope'), user)).toBe(false);
      });

      it('setMemberRole changes the role of a member only', async () => {
        const { room } = await newRoom();
        const user = uid('user');
        await backend.addMember(room.id, memberRecord(user), {});

        expect(await backend.setMemberRole(room.id, user, 'admin')).toBe(true);
        expect(await backend.getMember(room.id, user)).toMatchObject({ userId: user, role: 'admin' });
        expect((await backend.listMembers(room.id)).find((m) => m.userId === user)?.role).toBe('admin');

        const stranger = uid('stranger');
        expect(await backend.setMemberRole(room.id, stranger, 'admin')).toBe(false);
        expect(await backend.getMember(room.id, stranger)).toBeNull();
        expect(await backend.setMemberRole(uid('nope'), user, 'admin')).toBe(false);
      });

      it('listMembers and countMembers list every member with its role', async () => {
        const { room, owner } = await newRoom();
        const a = memberRecord(uid('a'), 'admin');
        const b = memberRecord(uid('b'), 'moderator');
        const c = memberRecord(uid('c'), 'member');
        for (const m of [a, b, c]) await backend.addMember(room.id, m, {});

        const members = await backend.listMembers(room.id);
        expect(members).toHaveLength(4);
        const byId = new Map(members.map((m) => [m.userId, m]));
        expect(byId.get(owner)?.role).toBe('owner');
        expect(byId.get(a.userId)).toEqual(a);
        expect(byId.get(b.userId)).toEqual(b);
        expect(byId.get(c.userId)).toEqual(c);
        expect(await backend.countMembers(room.id)).toBe(4);

        expect(await backend.listMembers(uid('nope'))).toEqual([]);
        expect(await backend.countMembers(uid('nope'))).toBe(0);
      });

      it('userRooms lists exactly the rooms a user is a member of', async () => {
        const user = uid('user');
        const { room: r1 } = await newRoom();
        const { room: r2 } = await newRoom();
        await newRoom(); // not joined
        const { room: r4 } = await newRoom({ owner: user });
        await backend.addMember(r1.id, memberRecord(user), {});
        await backend.addMember(r2.id, memberRecord(user), {});

        expect(sorted(await backend.userRooms(user))).toEqual(sorted([r1.id, r2.id, r4.id]));
        expect(await backend.userRooms(uid('nobody'))).toEqual([]);
      });
    });

    describe('restrictions', () => {
      const restriction = (over: Partial<Restriction> = {}): Restriction => ({
        kind: 'ban',
        userId: uid('target'),
        by: uid('mod'),
        reason: 'reason',
        at: new Date().toISOString(),
        until: null,
        ...over,
      });

      it('set, get, list and clear bans and mutes independently', async () => {
        const { room } = await newRoom();
        const user = uid('user');
        const ban = restriction({ kind: 'ban', userId: user, reason: 'spam' });
        const mute = restriction({ kind: 'mute', userId: user, until: Date.now() + 60_000 });

        expect(await backend.getRestriction(room.id, 'ban', user)).toBeNull();
        await backend.setRestriction(room.id, ban);
        expect(await backend.getRestriction(room.id, 'ban', user)).toEqual(ban);
        expect(await backend.getRestriction(room.id, 'mute', user)).toBeNull();

        await backend.setRestriction(room.id, mute);
        expect(await backend.getRestriction(room.id, 'mute', user)).toEqual(mute);
        const listed = await backend.listRestrictions(room.id);
        expect(listed).toHaveLength(2);
        expect(listed).toEqual(expect.arrayContaining([ban, mute]));

        // Setting the same kind again replaces it.
        const ban2 = { ...ban, reason: 'more spam', by: uid('admin') };
        await backend.setRestriction(room.id, ban2);
        expect(await backend.getRestriction(room.id, 'ban', user)).toEqual(ban2);
        expect(await backend.listRestrictions(room.id)).toHaveLength(2);

        expect(await backend.clearRestriction(room.id, 'ban', user)).toBe(true);
        expect(await backend.getRestriction(room.id, 'ban', user)).toBeNull();
        expect(await backend.getRestriction(room.id, 'mute', user)).toEqual(mute);
        expect(await backend.listRestrictions(room.id)).toEqual([mute]);
        expect(await backend.clearRestriction(room.id, 'ban', user)).toBe(false);
      });

      it('restrictions are per room', async () => {
        const { room: a } = await newRoom();
        const { room: b } = await newRoom();
        const ban = restriction();
        await backend.setRestriction(a.id, ban);
        expect(await backend.getRestriction(b.id, 'ban', ban.userId)).toBeNull();
        expect(await backend.listRestrictions(b.id)).toEqual([]);
      });

      it('a restriction whose until is in the past counts as none', async () => {
        const { room } = await newRoom();
        const past = restriction({ kind: 'mute', until: Date.now() - 1000 });
        const live = restriction({ kind: 'ban' });
        await backend.setRestriction(room.id, past);
        await backend.setRestriction(room.id, live);

        expect(await backend.getRestriction(room.id, 'mute', past.userId)).toBeNull();
        expect(await backend.listRestrictions(room.id)).toEqual([live]);
      });

      it('a timed restriction expires at until', async () => {
        const { room } = await newRoom();
        const timed = restriction({ kind: 'mute', until: Date.now() + 150 });
        await backend.setRestriction(room.id, timed);

        expect(await backend.getRestriction(room.id, 'mute', timed.userId)).toEqual(timed);
        expect(await backend.listRestrictions(room.id)).toEqual([timed]);

        await eventually(async () =>
          expect(await backend.getRestriction(room.id, 'mute', timed.userId)).toBeNull(),
        );
        expect(await backend.listRestrictions(room.id)).toEqual([]);
      });
    });

    describe('invitations and moderation log', () => {
      it('add, get and remove invitations per room and user', async () => {
        const { room, owner } = await newRoom({ private: true });
        const other = (await newRoom()).room;
        const guest = uid('guest');
        expect(await backend.getInvitation(room.id, guest)).toBeNull();
        const inv = { userId: guest, invitedBy: owner, at: new Date().toISOString() };
        await backend.addInvitation(room.id, inv);
        expect(await backend.getInvitation(room.id, guest)).toEqual(inv);
        expect(await backend.getInvitation(other.id, guest)).toBeNull();
        expect(await backend.removeInvitation(room.id, guest)).toBe(true);
        expect(await backend.removeInvitation(room.id, guest)).toBe(false);
        expect(await backend.getInvitation(room.id, guest)).toBeNull();
      });

      it('keeps the newest maxEntries log entries, oldest first', async () => {
        const { room, owner } = await newRoom();
        for (let i = 0; i < 5; i++) {
          await backend.appendModerationLog(
            room.id,
            {
              action: 'kick',
              roomId: room.id,
              moderatorId: owner,
              targetId: `t${i}`,
              reason: `r${i}`,
              at: new Date().toISOString(),
            },
            3,
          );
        }
        const log = await backend.getModerationLog(room.id, 10);
        expect(log.map((e) => e.targetId)).toEqual(['t2', 't3', 't4']);
        expect((await backend.getModerationLog(room.id, 2)).map((e) => e.targetId)).toEqual(['t3', 't4']);
        expect(log[0]).toMatchObject({ action: 'kick', moderatorId: owner, reason: 'r2' });
      });

      it('deleteRoom drops invitations and the log', async () => {
        const { room, owner } = await newRoom({ private: true });
        const guest = uid('guest');
        await backend.addInvitation(room.id, {
          userId: guest,
          invitedBy: owner,
          at: new Date().toISOString(),
        });
        await backend.appendModerationLog(
          room.id,
          {
            action: 'ban',
            roomId: room.id,
            moderatorId: owner,
            targetId: guest,
            reason: '',
            at: new Date().toISOString(),
          },
          10,
        );
        await backend.deleteRoom(room.id);
        await backend.createRoom({ ...room }, memberRecord(owner, 'owner'));
        expect(await backend.getInvitation(room.id, guest)).toBeNull();
        expect(await backend.getModerationLog(room.id, 10)).toEqual([]);
      });
    });

    describe('history', () => {
      it('appendMessage to a room that does not exist is room_not_found and creates nothing', async () => {
        const id = uid('room');
        await expect(backend.appendMessage(id, draftFor(id), { maxHistory: 100 })).rejects.toMatchObject({
          code: 'room_not_found',
        });
        expect(await backend.getRoom(id)).toBeNull();
        expect(await backend.latestSeq(id)).toBe(0);
      });

      it('appendMessage gives seq 1, 2, 3 gap-free and returns the stored message with every draft field', async () => {
        const { room } = await newRoom();
        const drafts = [1, 2, 3].map((i) =>
          draftFor(room.id, { content: `m${i}`, metadata: { i, deep: { list: [i] } } }),
        );
        const stored: StoredMessage[] = [];
        for (const d of drafts) stored.push(await backend.appendMessage(room.id, d, { maxHistory: 100 }));

        expect(seqs(stored)).toEqual([1, 2, 3]);
        stored.forEach((s, i) => expect(s).toEqual({ ...drafts[i], seq: i + 1 }));
        expect(await backend.getHistory(room.id, { limit: 50 })).toEqual(stored);
        expect(await backend.latestSeq(room.id)).toBe(3);
      });

      it('seq is independent per room', async () => {
        const { room: a } = await newRoom();
        const { room: b } = await newRoom();
        const r1 = await backend.appendMessage(a.id, draftFor(a.id), { maxHistory: 100 });
        const r2 = await backend.appendMessage(a.id, draftFor(a.id), { maxHistory: 100 });
        const r3 = await backend.appendMessage(b.id, draftFor(b.id), { maxHistory: 100 });
        const r4 = await backend.appendMessage(a.id, draftFor(a.id), { maxHistory: 100 });
        const r5 = await backend.appendMessage(b.id, draftFor(b.id), { maxHistory: 100 });

        expect(seqs([r1, r2, r4])).toEqual([1, 2, 3]);
        expect(seqs([r3, r5])).toEqual([1, 2]);
        expect(seqs(await backend.getHistory(a.id, { limit: 50 }))).toEqual([1, 2, 3]);
        expect(seqs(await backend.getHistory(b.id, { limit: 50 }))).toEqual([1, 2]);
        expect(await backend.latestSeq(a.id)).toBe(3);
        expect(await backend.latestSeq(b.id)).toBe(2);
      });

      it('50 concurrent appends get exactly seqs 1..50', async () => {
        const { room } = await newRoom();
        const drafts = Array.from({ length: 50 }, () => draftFor(room.id));
        const stored = await Promise.all(
          drafts.map((d) => backend.appendMessage(room.id, d, { maxHistory: 1000 })),
        );

        const got = seqs(stored).sort((x, y) => x - y);
        expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        stored.forEach((s, i) => expect(s).toEqual({ ...drafts[i], seq: s.seq }));

        const history = await backend.getHistory(room.id, { limit: 100 });
        expect(seqs(history)).toEqual(got);
        const byId = new Map(stored.map((s) => [s.id, s]));
        for (const h of history) expect(h).toEqual(byId.get(h.id));
        expect(await backend.latestSeq(room.id)).toBe(50);
      });

      it('publishTopic delivers message envelopes matching messageToWire(stored)', async () => {
        const { room } = await newRoom();
        const topic = uid('room-topic');
        const box = await collect(topic);
        const stored: StoredMessage[] = [];
        for (let i = 0; i < 3; i++) {
          stored.push(
            await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100, publishTopic: topic }),
          );
        }
        // Without publishTopic nothing is published.
        await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });

        await eventually(() => expect(box.payloads).toHaveLength(3));
        await sleep(settleMs);
        expect(box.payloads).toHaveLength(3);
        const envelopes = box.payloads.map((p) => JSON.parse(p) as { type: string; data: unknown });
        expect(envelopes).toEqual(stored.map((s) => ({ type: 'message', data: messageToWire(s) })));
      });

      it('publishTopic delivers concurrent appends exactly once, in strictly increasing seq order', async () => {
        const { room } = await newRoom();
        const topic = uid('room-topic');
        const box = await collect(topic);
        const n = 50;
        const stored = await Promise.all(
          Array.from({ length: n }, () =>
            backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 1000, publishTopic: topic }),
          ),
        );

        await eventually(() => expect(box.payloads).toHaveLength(n));
        await sleep(settleMs);
        expect(box.payloads).toHaveLength(n);

        const envelopes = box.payloads.map((p) => JSON.parse(p) as { type: string; data: { seq: number } });
        for (const e of envelopes) expect(e.type).toBe('message');
        expect(envelopes.map((e) => e.data.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
        const bySeq = new Map(stored.map((s) => [s.seq, s]));
        for (const e of envelopes) expect(e.data).toEqual(messageToWire(bySeq.get(e.data.seq)!));
      });

      it('maxHistory caps stored history (oldest dropped) while seq keeps counting', async () => {
        const { room } = await newRoom();
        const stored: StoredMessage[] = [];
        for (let i = 0; i < 5; i++)
          stored.push(await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 3 }));

        expect(seqs(await backend.getHistory(room.id, { limit: 50 }))).toEqual([3, 4, 5]);
        expect(await backend.getMessage(room.id, stored[0].id)).toBeNull();
        expect(await backend.getMessage(room.id, stored[1].id)).toBeNull();
        expect(await backend.getMessage(room.id, stored[2].id)).toEqual(stored[2]);
        expect(await backend.latestSeq(room.id)).toBe(5);
        expect(await backend.oldestSeq(room.id)).toBe(3);

        const next = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 3 });
        expect(next.seq).toBe(6);
        expect(seqs(await backend.getHistory(room.id, { limit: 50 }))).toEqual([4, 5, 6]);
      });

      it('getHistory pages like get_history in PROTOCOL.md', async () => {
        const { room } = await newRoom();
        for (let i = 0; i < 10; i++)
          await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        const page = async (q: { limit?: number; before?: number; after?: number }): Promise<number[]> =>
          seqs(await backend.getHistory(room.id, { limit: 50, ...q }));

        expect(await page({})).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect(await page({ limit: 3 })).toEqual([8, 9, 10]);
        expect(await page({ limit: 50, before: 4 })).toEqual([1, 2, 3]);
        expect(await page({ before: 8, limit: 2 })).toEqual([6, 7]);
        expect(await page({ before: 1 })).toEqual([]);
        expect(await page({ after: 7 })).toEqual([8, 9, 10]);
        expect(await page({ after: 2, limit: 3 })).toEqual([3, 4, 5]);
        expect(await page({ after: 10 })).toEqual([]);
        expect(await page({ after: 2, before: 6 })).toEqual([3, 4, 5]);
        expect(await page({ after: 0, limit: 2 })).toEqual([1, 2]);
        expect(await page({ before: 100, limit: 2 })).toEqual([9, 10]);
        expect(seqs(await backend.getHistory(uid('nope'), { limit: 50 }))).toEqual([]);
      });

      it('getMessage finds a stored message by id', async () => {
        const { room } = await newRoom();
        const a = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        const b = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        expect(await backend.getMessage(room.id, a.id)).toEqual(a);
        expect(await backend.getMessage(room.id, b.id)).toEqual(b);
        expect(await backend.getMessage(room.id, randomUUID())).toBeNull();
        expect(await backend.getMessage(uid('nope'), a.id)).toBeNull();
      });

      it('updateMessage edit changes the content and keeps the previous one in versions', async () => {
        const { room } = await newRoom();
        const before = await backend.appendMessage(room.id, draftFor(room.id, { content: 'first' }), {
          maxHistory: 100,
        });
        await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        const editor = uid('editor');
        const at1 = new Date(Date.now() + 1000).toISOString();

        const r1 = await backend.updateMessage(room.id, before.id, {
          kind: 'edit',
          content: 'second',
          by: editor,
          at: at1,
          keepVersions: 20,
        });
        expect(r1?.changed).toBe(true);
        expect(r1?.message).toMatchObject({
          id: before.id,
          seq: before.seq,
          userId: before.userId,
          content: 'second',
          editedAt: at1,
          editedBy: editor,
          metadata: before.metadata,
          timestamp: before.timestamp,
        });
        expect(r1?.message.versions?.map((v) => v.content)).toEqual(['first']);

        const at2 = new Date(Date.now() + 2000).toISOString();
        const r2 = await backend.updateMessage(room.id, before.id, {
          kind: 'edit',
          content: 'third',
          by: before.userId,
          at: at2,
          keepVersions: 20,
        });
        expect(r2?.message).toMatchObject({
          content: 'third',
          editedAt: at2,
          editedBy: before.userId,
          seq: before.seq,
        });
        expect(r2?.message.versions?.map((v) => v.content)).toEqual(['first', 'second']);

        expect(await backend.getMessage(room.id, before.id)).toEqual(r2?.message);
        const history = await backend.getHistory(room.id, { limit: 50 });
        expect(seqs(history)).toEqual([1, 2]);
        expect(history[0]).toEqual(r2?.message);
        expect(await backend.latestSeq(room.id)).toBe(2);
      });

      it('updateMessage keeps at most keepVersions versions, dropping the oldest', async () => {
        const { room } = await newRoom();
        // Contents that a naive JSON splitter or a JSON re-encoding would break.
        const v = (i: number): string => `v${i} "}{][,\\" \ud800 \\u0022`;
        const msg = await backend.appendMessage(room.id, draftFor(room.id, { content: v(0) }), {
          maxHistory: 100,
        });
        for (let i = 1; i <= 6; i++) {
          const at = new Date(Date.now() + i * 1000).toISOString();
          await backend.updateMessage(room.id, msg.id, {
            kind: 'edit',
            content: v(i),
            by: 'e',
            at,
            keepVersions: 3,
          });
        }
        const edited = await backend.getMessage(room.id, msg.id);
        expect(edited?.content).toBe(v(6));
        expect(edited?.versions?.map((x) => x.content)).toEqual([v(3), v(4), v(5)]);
        const at = new Date(Date.now() + 9000).toISOString();
        const del = await backend.updateMessage(room.id, msg.id, {
          kind: 'delete',
          by: 'm',
          at,
          keepVersions: 3,
        });
        expect(del?.message.versions?.map((x) => x.content)).toEqual([v(4), v(5), v(6)]);
      });

      it('updateMessage refuses a new reaction beyond maxReactions (limited) but not more users on one', async () => {
        const { room } = await newRoom();
        const msg = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        const react = (reaction: string, userId: string, add = true) =>
          backend.updateMessage(room.id, msg.id, { kind: 'react', reaction, userId, add, maxReactions: 2 });
        expect((await react('a', 'u1'))?.changed).toBe(true);
        expect((await react('b', 'u1'))?.changed).toBe(true);
        const refused = await react('c', 'u1');
        expect(refused).toMatchObject({ changed: false, limited: true });
        expect(Object.keys(refused!.message.reactions)).toEqual(['a', 'b']);
        expect((await react('a', 'u2'))?.changed).toBe(true);
        expect((await react('b', 'u1', false))?.changed).toBe(true);
        expect((await react('c', 'u1'))?.changed).toBe(true);
        expect((await backend.getMessage(room.id, msg.id))?.reactions).toEqual({
          a: ['u1', 'u2'],
          c: ['u1'],
        });
      });

      it('updateMessage delete leaves a tombstone in history with the old content in versions', async () => {
        const { room } = await newRoom();
        const msg = await backend.appendMessage(room.id, draftFor(room.id, { content: 'secret' }), {
          maxHistory: 100,
        });
        await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        const mod = uid('mod');
        const at = new Date().toISOString();

        const r = await backend.updateMessage(room.id, msg.id, {
          kind: 'delete',
          by: mod,
          at,
          keepVersions: 20,
        });
        expect(r?.changed).toBe(true);
        expect(r?.message).toMatchObject({
          id: msg.id,
          seq: msg.seq,
          deleted: true,
          deletedBy: mod,
          deletedAt: at,
        });
        expect(r?.message.versions?.map((v) => v.content)).toContain('secret');

        const history = await backend.getHistory(room.id, { limit: 50 });
        expect(seqs(history)).toEqual([1, 2]);
        expect(history[0]).toEqual(r?.message);
        expect(await backend.getMessage(room.id, msg.id)).toEqual(r?.message);

        const again = await backend.updateMessage(room.id, msg.id, {
          kind: 'delete',
          by: mod,
          at,
          keepVersions: 20,
        });
        expect(again?.changed).toBe(false);
        expect(again?.message.deleted).toBe(true);
      });

      it('updateMessage react adds and removes one reaction per user per emoji', async () => {
        const { room } = await newRoom();
        const msg = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        const [u1, u2] = [uid('u1'), uid('u2')];
        const react = (reaction: string, userId: string, add: boolean) =>
          backend.updateMessage(room.id, msg.id, { kind: 'react', reaction, userId, add, maxReactions: 50 });

        const a = await react('👍', u1, true);
        expect(a?.changed).toBe(true);
        expect(a?.message.reactions).toEqual({ '👍': [u1] });

        const dup = await react('👍', u1, true);
        expect(dup?.changed).toBe(false);
        expect(dup?.message.reactions).toEqual({ '👍': [u1] });

        expect((await react('👍', u2, true))?.message.reactions).toEqual({ '👍': [u1, u2] });
        expect((await react('🎉', u2, true))?.message.reactions).toEqual({ '👍': [u1, u2], '🎉': [u2] });
        expect((await backend.getMessage(room.id, msg.id))?.reactions).toEqual({
          '👍': [u1, u2],
          '🎉': [u2],
        });

        const rm = await react('👍', u1, false);
        expect(rm?.changed).toBe(true);
        expect(rm?.message.reactions).toEqual({ '👍': [u2], '🎉': [u2] });

        const rmAgain = await react('👍', u1, false);
        expect(rmAgain?.changed).toBe(false);

        // Removing the last user removes the key.
        const last = await react('🎉', u2, false);
        expect(last?.changed).toBe(true);
        expect(last?.message.reactions).toEqual({ '👍': [u2] });
        expect(Object.keys((await backend.getMessage(room.id, msg.id))!.reactions)).toEqual(['👍']);

        expect((await react('🎉', u2, false))?.changed).toBe(false);
        expect((await backend.getHistory(room.id, { limit: 50 }))[0].reactions).toEqual({ '👍': [u2] });
      });

      it('a reaction named "__proto__" is a plain key and does not pollute Object.prototype', async () => {
        const { room } = await newRoom();
        const msg = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        const user = uid('u');
        const protoNamesBefore = Object.getOwnPropertyNames(Object.prototype).sort();

        const r = await backend.updateMessage(room.id, msg.id, {
          kind: 'react',
          reaction: '__proto__',
          userId: user,
          add: true,
          maxReactions: 50,
        });
        expect(r?.changed).toBe(true);
        for (const reactions of [
          r!.message.reactions,
          (await backend.getMessage(room.id, msg.id))!.reactions,
        ]) {
          expect(Object.keys(reactions)).toEqual(['__proto__']);
          expect(Object.getOwnPropertyDescriptor(reactions, '__proto__')?.value).toEqual([user]);
        }
        expect(
          (JSON.parse(JSON.stringify(messageToWire(r!.message))) as { reactions: unknown }).reactions,
        ).toEqual(JSON.parse(`{"__proto__":${JSON.stringify([user])}}`));

        expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoNamesBefore);
        expect(({} as Record<string, unknown>)[0]).toBeUndefined();
        expect(Object.getPrototypeOf({})).toBe(Object.prototype);

        const dup = await backend.updateMessage(room.id, msg.id, {
          kind: 'react',
          reaction: '__proto__',
          userId: user,
          add: true,
          maxReactions: 50,
        });
        expect(dup?.changed).toBe(false);

        const rm = await backend.updateMessage(room.id, msg.id, {
          kind: 'react',
          reaction: '__proto__',
          userId: user,
          add: false,
          maxReactions: 50,
        });
        expect(rm?.changed).toBe(true);
        expect(Object.keys(rm!.message.reactions)).toEqual([]);
        expect(Object.keys((await backend.getMessage(room.id, msg.id))!.reactions)).toEqual([]);
        expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoNamesBefore);
      });

      it('updateMessage of an unknown message or room is null', async () => {
        const { room } = await newRoom();
        const msg = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        const at = new Date().toISOString();
        expect(
          await backend.updateMessage(room.id, randomUUID(), {
            kind: 'edit',
            content: 'x',
            by: 'u',
            at,
            keepVersions: 20,
          }),
        ).toBeNull();
        expect(
          await backend.updateMessage(room.id, randomUUID(), {
            kind: 'delete',
            by: 'u',
            at,
            keepVersions: 20,
          }),
        ).toBeNull();
        expect(
          await backend.updateMessage(room.id, randomUUID(), {
            kind: 'react',
            reaction: '👍',
            userId: 'u',
            add: true,
            maxReactions: 50,
          }),
        ).toBeNull();
        expect(
          await backend.updateMessage(uid('nope'), msg.id, {
            kind: 'edit',
            content: 'x',
            by: 'u',
            at,
            keepVersions: 20,
          }),
        ).toBeNull();
        expect(await backend.getMessage(room.id, msg.id)).toEqual(msg);
      });

      it('latestSeq and oldestSeq track appends and trims', async () => {
        const { room } = await newRoom();
        expect(await backend.latestSeq(room.id)).toBe(0);
        expect(await backend.oldestSeq(room.id)).toBe(1);

        for (let i = 0; i < 3; i++)
          await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        expect(await backend.latestSeq(room.id)).toBe(3);
        expect(await backend.oldestSeq(room.id)).toBe(1);

        expect(await backend.trimHistory(room.id, { maxCount: 1 })).toBe(2);
        expect(await backend.oldestSeq(room.id)).toBe(3);
        expect(await backend.latestSeq(room.id)).toBe(3);

        expect(await backend.trimHistory(room.id, { maxCount: 0 })).toBe(1);
        expect(await backend.getHistory(room.id, { limit: 50 })).toEqual([]);
        expect(await backend.latestSeq(room.id)).toBe(3);
        expect(await backend.oldestSeq(room.id)).toBe(4);

        const next = await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
        expect(next.seq).toBe(4);
        expect(await backend.oldestSeq(room.id)).toBe(4);
        expect(await backend.latestSeq(room.id)).toBe(4);
      });

      it('trimHistory by maxCount drops the oldest and returns how many', async () => {
        const { room } = await newRoom();
        const stored: StoredMessage[] = [];
        for (let i = 0; i < 6; i++)
          stored.push(await backend.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 }));

        expect(await backend.trimHistory(room.id, { maxCount: 10 })).toBe(0);
        expect(await backend.trimHistory(room.id, { maxCount: 4 })).toBe(2);
        expect(seqs(await backend.getHistory(room.id, { limit: 50 }))).toEqual([3, 4, 5, 6]);
        expect(await backend.getMessage(room.id, stored[0].id)).toBeNull();
        expect(await backend.getMessage(room.id, stored[2].id)).toEqual(stored[2]);
        expect(await backend.trimHistory(room.id, { maxCount: 4 })).toBe(0);
        expect(await backend.trimHistory(uid('nope'), { maxCount: 0 })).toBe(0);
      });

      it('trimHistory by olderThan drops messages older than the cutoff', async () => {
        const { room } = await newRoom();
        const now = Date.now();
        const old = [3, 2, 1].map((h) =>
          draftFor(room.id, { timestamp: new Date(now - h * 3600_000).toISOString() }),
        );
        const fresh = [0, 1].map((s) =>
          draftFor(room.id, { timestamp: new Date(now - s * 1000).toISOString() }),
        );
        const stored: StoredMessage[] = [];
        for (const d of [...old, ...fresh])
          stored.push(await backend.appendMessage(room.id, d, { maxHistory: 100 }));

        // Cutoff between the 2h and 1h old messages: two dropped.
        expect(await backend.trimHistory(room.id, { maxCount: 100, olderThan: now - 90 * 60_000 })).toBe(2);
        expect(seqs(await backend.getHistory(room.id, { limit: 50 }))).toEqual([3, 4, 5]);
        expect(await backend.getMessage(room.id, stored[0].id)).toBeNull();
        expect(await backend.oldestSeq(room.id)).toBe(3);

        // Both limits at once: older than 1 minute (one more) and beyond maxCount 1 (one more).
        expect(await backend.trimHistory(room.id, { maxCount: 1, olderThan: now - 60_000 })).toBe(2);
        expect(seqs(await backend.getHistory(room.id, { limit: 50 }))).toEqual([5]);
        expect(await backend.latestSeq(room.id)).toBe(5);
      });
    });

    describe('presence', () => {
      const presence = (over: Partial<PresenceRecord> = {}): PresenceRecord => ({
        userId: uid('user'),
        status: 'online',
        lastSeen: new Date().toISOString(),
        ...over,
      });

      it('set, get and remove presence', async () => {
        const a = presence({ custom: 'coding' });
        const b = presence({ status: 'away' });
        const missing = uid('missing');
        await backend.setPresence(a, 60);
        await backend.setPresence(b, 60);

        const got = await backend.getPresence([a.userId, missing, b.userId]);
        expect(got).toHaveLength(2);
        expect(got).toEqual(expect.arrayContaining([a, b]));
        expect(await backend.getPresence([])).toEqual([]);

        const a2 = { ...a, status: 'busy' as const, custom: undefined };
        delete a2.custom;
        await backend.setPresence(a2, 60);
        expect(await backend.getPresence([a.userId])).toEqual([a2]);

        await backend.removePresence(a.userId);
        expect(await backend.getPresence([a.userId, b.userId])).toEqual([b]);
        await backend.removePresence(missing);
      });

      it('presence expires after its TTL', async () => {
        const p = presence();
        const keep = presence();
        await backend.setPresence(p, 0.2);
        await backend.setPresence(keep, 60);
        expect(await backend.getPresence([p.userId])).toEqual([p]);

        await eventually(async () => expect(await backend.getPresence([p.userId])).toEqual([]));
        expect(await backend.getPresence([keep.userId])).toEqual([keep]);
      });
    });

    describe('connection directory', () => {
      it('tracks the nodes of a user and the users of a node', async () => {
        const [u1, u2, n1, n2] = [uid('user'), uid('user'), uid('node'), uid('node')];
        await backend.addUserNode(u1, n1);
        await backend.addUserNode(u1, n2);
        await backend.addUserNode(u2, n1);
        await backend.addUserNode(u2, n1);
        expect(sorted(await backend.userNodes(u1))).toEqual(sorted([n1, n2]));
        expect(sorted(await backend.nodeUsers(n1))).toEqual(sorted([u1, u2]));
        await backend.removeUserNode(u1, n1);
        expect(await backend.userNodes(u1)).toEqual([n2]);
        expect(await backend.nodeUsers(n1)).toEqual([u2]);
        await backend.removeUserNode(u2, n1);
        await backend.removeUserNode(u2, n1);
        expect(await backend.nodeUsers(n1)).toEqual([]);
        expect(await backend.userNodes(uid('nobody'))).toEqual([]);
      });
    });

    describe('connections per user', () => {
      it('sums the counts of every node and refuses an increase past max', async () => {
        const [u, n1, n2] = [uid('user'), uid('node'), uid('node')];
        expect(await backend.userConnections(u)).toEqual({});
        expect(await backend.setUserConnections(u, n1, 2, { max: 3 })).toBe(true);
        expect(await backend.setUserConnections(u, n2, 1, { max: 3 })).toBe(true);
        expect(await backend.userConnections(u)).toEqual({ [n1]: 2, [n2]: 1 });
        // A fourth connection on either node is refused and changes nothing.
        expect(await backend.setUserConnections(u, n2, 2, { max: 3 })).toBe(false);
        expect(await backend.setUserConnections(u, n1, 3, { max: 3 })).toBe(false);
        expect(await backend.userConnections(u)).toEqual({ [n1]: 2, [n2]: 1 });
        // Lowering is always accepted; 0 removes the entry.
        expect(await backend.setUserConnections(u, n1, 0, { max: 3 })).toBe(true);
        expect(await backend.userConnections(u)).toEqual({ [n2]: 1 });
        expect(await backend.setUserConnections(u, n1, 2, { max: 3 })).toBe(true);
        // Without max, any count is recorded.
        expect(await backend.setUserConnections(u, n2, 9)).toBe(true);
        expect(await backend.userConnections(u)).toEqual({ [n1]: 2, [n2]: 9 });
      });

      it('does not count, and removes, the entries of dead nodes', async () => {
        const [u, live, dead] = [uid('user'), uid('node'), uid('node')];
        await backend.setUserConnections(u, dead, 3);
        expect(await backend.setUserConnections(u, live, 1, { max: 3 })).toBe(false);
        expect(await backend.setUserConnections(u, live, 1, { max: 3, deadNodes: [dead] })).toBe(true);
        expect(await backend.userConnections(u)).toEqual({ [live]: 1 });
      });

      it('admits exactly max under concurrent claims from several nodes', async () => {
        const u = uid('user');
        const nodes = Array.from({ length: 6 }, () => uid('node'));
        const results = await Promise.all(nodes.map((n) => backend.setUserConnections(u, n, 1, { max: 4 })));
        expect(results.filter(Boolean)).toHaveLength(4);
        const counts = await backend.userConnections(u);
        expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(4);
      });
    });

    describe('expiring sets', () => {
      it('adds, renews and lists live members, refusing past max', async () => {
        const key = uid('set');
        expect(await backend.listExpiring(key)).toEqual([]);
        const a = await backend.touchExpiring(key, 'a', 60_000, 2);
        expect(a).toMatchObject({ added: true });
        expect(a!.expires).toBeGreaterThan(Date.now() + 50_000);
        expect(await backend.touchExpiring(key, 'b', 60_000, 2)).toMatchObject({ added: true });
        // Full: a third member is refused, the present ones renew.
        expect(await backend.touchExpiring(key, 'c', 60_000, 2)).toBeNull();
        expect(await backend.touchExpiring(key, 'a', 60_000, 2)).toMatchObject({ added: false });
        expect(sorted(await backend.listExpiring(key))).toEqual(['a', 'b']);
        expect(await backend.listExpiring(uid('other'))).toEqual([]);
      });

      it('expired members are not listed, do not count towards max, and come back as added', async () => {
        const key = uid('set');
        await backend.touchExpiring(key, 'a', 100, 1);
        await eventually(async () => expect(await backend.listExpiring(key)).toEqual([]));
        expect(await backend.touchExpiring(key, 'b', 60_000, 1)).toMatchObject({ added: true });
        expect(await backend.touchExpiring(key, 'a', 60_000, 2)).toMatchObject({ added: true });
      });

      it('removeExpiring with a stamp removes only what was not renewed since', async () => {
        const key = uid('set');
        const first = (await backend.touchExpiring(key, 'a', 100, 5))!;
        await new Promise((r) => setTimeout(r, 5));
        const second = (await backend.touchExpiring(key, 'a', 60_000, 5))!;
        expect(second.expires).not.toBe(first.expires);
        expect(await backend.removeExpiring(key, 'a', first.expires)).toBe(false);
        expect(await backend.listExpiring(key)).toEqual(['a']);
        expect(await backend.removeExpiring(key, 'a', second.expires)).toBe(true);
        expect(await backend.removeExpiring(key, 'a')).toBe(false);
        await backend.touchExpiring(key, 'b', 60_000, 5);
        expect(await backend.removeExpiring(key, 'b')).toBe(true);
        expect(await backend.listExpiring(key)).toEqual([]);
      });

      it('an expired member can still be removed by its stamp (its owner announces the end)', async () => {
        const key = uid('set');
        const t = (await backend.touchExpiring(key, 'a', 50, 5))!;
        await new Promise((r) => setTimeout(r, 120));
        expect(await backend.listExpiring(key)).toEqual([]);
        expect(await backend.removeExpiring(key, 'a', t.expires)).toBe(true);
      });

      it('admits exactly max members under concurrent touches', async () => {
        const key = uid('set');
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => backend.touchExpiring(key, `m${i}`, 60_000, 3)),
        );
        expect(results.filter((r) => r !== null)).toHaveLength(3);
        expect(await backend.listExpiring(key)).toHaveLength(3);
      });
    });

    describe('counters', () => {
      it('incrementCounter returns running totals and getCounter reads them', async () => {
        const key = uid('counter');
        expect(await backend.getCounter(key)).toBe(0);
        expect(await backend.incrementCounter(key, 1, 60_000)).toBe(1);
        expect(await backend.incrementCounter(key, 2, 60_000)).toBe(3);
        expect(await backend.incrementCounter(key, 3, 60_000)).toBe(6);
        expect(await backend.getCounter(key)).toBe(6);
        expect(await backend.getCounter(uid('other'))).toBe(0);
      });

      it('incrementCounter is atomic under concurrency', async () => {
        const key = uid('counter');
        const results = await Promise.all(
          Array.from({ length: 30 }, () => backend.incrementCounter(key, 1, 60_000)),
        );
        expect([...results].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
        expect(await backend.getCounter(key)).toBe(30);
      });

      it('a counter resets after its ttlMs', async () => {
        const key = uid('counter');
        expect(await backend.incrementCounter(key, 5, 150)).toBe(5);
        expect(await backend.getCounter(key)).toBe(5);
        await eventually(async () => expect(await backend.getCounter(key)).toBe(0));
        expect(await backend.incrementCounter(key, 2, 150)).toBe(2);
      });

      it('the counter ttl runs from its creation, not from the last increment', async () => {
        const key = uid('counter');
        await backend.incrementCounter(key, 1, 200);
        // Incrementing every 20 ms: a sliding ttl would never let the counter reset.
        await eventually(async () => expect(await backend.incrementCounter(key, 1, 200)).toBe(1), 2000, 20);
      });
    });

    describe('node registry', () => {
      const node = (over: Partial<NodeInfo> = {}): NodeInfo => ({
        nodeId: uid('node'),
        startedAt: new Date().toISOString(),
        lastHeartbeat: new Date().toISOString(),
        connections: 3,
        region: 'eu-west',
        address: '10.0.0.1:3000',
        ...over,
      });

      it('registerNode, listNodes and removeNode', async () => {
        const a = node();
        const b = node({ region: undefined, address: undefined });
        delete b.region;
        delete b.address;
        await backend.registerNode(a, 60);
        await backend.registerNode(b, 60);

        let listed = await backend.listNodes();
        expect(listed.find((n) => n.nodeId === a.nodeId)).toEqual(a);
        expect(listed.find((n) => n.nodeId === b.nodeId)).toEqual(b);

        // A heartbeat replaces the entry.
        const a2 = { ...a, connections: 42, lastHeartbeat: new Date(Date.now() + 1000).toISOString() };
        await backend.registerNode(a2, 60);
        listed = await backend.listNodes();
        expect(listed.filter((n) => n.nodeId === a.nodeId)).toEqual([a2]);

        await backend.removeNode(a.nodeId);
        listed = await backend.listNodes();
        expect(listed.find((n) => n.nodeId === a.nodeId)).toBeUndefined();
        expect(listed.find((n) => n.nodeId === b.nodeId)).toEqual(b);
        await backend.removeNode(uid('unknown'));
      });

      it('a node disappears after its TTL', async () => {
        const short = node();
        const long = node();
        await backend.registerNode(short, 0.2);
        await backend.registerNode(long, 60);
        expect((await backend.listNodes()).map((n) => n.nodeId)).toEqual(
          expect.arrayContaining([short.nodeId, long.nodeId]),
        );

        await eventually(async () =>
          expect((await backend.listNodes()).map((n) => n.nodeId)).not.toContain(short.nodeId),
        );
        expect((await backend.listNodes()).map((n) => n.nodeId)).toContain(long.nodeId);
      });
    });
  });
}
