/**
 * The {@link RoomStore}'s moderation state: bans and mutes (timed or not),
 * invitations and the moderation log. Run by the room store suite.
 */
import type { Restriction, RoomStore } from '../interfaces';
import { eventually, memberRecord, newRoom, uid } from './contract-helpers';

/** The restriction, invitation and moderation log tests, in the current `describe`, against `subject()`. */
export function declareRoomModerationTests(subject: () => RoomStore): void {
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
      const store = subject();
      const { room } = await newRoom(store);
      const user = uid('user');
      const ban = restriction({ kind: 'ban', userId: user, reason: 'spam' });
      const mute = restriction({ kind: 'mute', userId: user, until: Date.now() + 60_000 });

      expect(await store.getRestriction(room.id, 'ban', user)).toBeNull();
      await store.setRestriction(room.id, ban);
      expect(await store.getRestriction(room.id, 'ban', user)).toEqual(ban);
      expect(await store.getRestriction(room.id, 'mute', user)).toBeNull();

      await store.setRestriction(room.id, mute);
      expect(await store.getRestriction(room.id, 'mute', user)).toEqual(mute);
      const listed = await store.listRestrictions(room.id);
      expect(listed).toHaveLength(2);
      expect(listed).toEqual(expect.arrayContaining([ban, mute]));

      // Setting the same kind again replaces it.
      const ban2 = { ...ban, reason: 'more spam', by: uid('admin') };
      await store.setRestriction(room.id, ban2);
      expect(await store.getRestriction(room.id, 'ban', user)).toEqual(ban2);
      expect(await store.listRestrictions(room.id)).toHaveLength(2);

      expect(await store.clearRestriction(room.id, 'ban', user)).toBe(true);
      expect(await store.getRestriction(room.id, 'ban', user)).toBeNull();
      expect(await store.getRestriction(room.id, 'mute', user)).toEqual(mute);
      expect(await store.listRestrictions(room.id)).toEqual([mute]);
      expect(await store.clearRestriction(room.id, 'ban', user)).toBe(false);
    });

    it('restrictions are per room', async () => {
      const store = subject();
      const { room: a } = await newRoom(store);
      const { room: b } = await newRoom(store);
      const ban = restriction();
      await store.setRestriction(a.id, ban);
      expect(await store.getRestriction(b.id, 'ban', ban.userId)).toBeNull();
      expect(await store.listRestrictions(b.id)).toEqual([]);
    });

    it('a restriction whose until is in the past counts as none', async () => {
      const store = subject();
      const { room } = await newRoom(store);
      const past = restriction({ kind: 'mute', until: Date.now() - 1000 });
      const live = restriction({ kind: 'ban' });
      await store.setRestriction(room.id, past);
      await store.setRestriction(room.id, live);

      expect(await store.getRestriction(room.id, 'mute', past.userId)).toBeNull();
      expect(await store.listRestrictions(room.id)).toEqual([live]);
    });

    it('a timed restriction expires at until', async () => {
      const store = subject();
      const { room } = await newRoom(store);
      const timed = restriction({ kind: 'mute', until: Date.now() + 150 });
      await store.setRestriction(room.id, timed);

      expect(await store.getRestriction(room.id, 'mute', timed.userId)).toEqual(timed);
      expect(await store.listRestrictions(room.id)).toEqual([timed]);

      await eventually(async () =>
        expect(await store.getRestriction(room.id, 'mute', timed.userId)).toBeNull(),
      );
      expect(await store.listRestrictions(room.id)).toEqual([]);
    });
  });

  describe('invitations and moderation log', () => {
    it('add, get and remove invitations per room and user', async () => {
      const store = subject();
      const { room, owner } = await newRoom(store, { private: true });
      const other = (await newRoom(store)).room;
      const guest = uid('guest');
      expect(await store.getInvitation(room.id, guest)).toBeNull();
      const inv = { userId: guest, invitedBy: owner, at: new Date().toISOString() };
      await store.addInvitation(room.id, inv);
      expect(await store.getInvitation(room.id, guest)).toEqual(inv);
      expect(await store.getInvitation(other.id, guest)).toBeNull();
      expect(await store.removeInvitation(room.id, guest)).toBe(true);
      expect(await store.removeInvitation(room.id, guest)).toBe(false);
      expect(await store.getInvitation(room.id, guest)).toBeNull();
    });

    it('keeps the newest maxEntries log entries, oldest first', async () => {
      const store = subject();
      const { room, owner } = await newRoom(store);
      for (let i = 0; i < 5; i++) {
        await store.appendModerationLog(
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
      const log = await store.getModerationLog(room.id, 10);
      expect(log.map((e) => e.targetId)).toEqual(['t2', 't3', 't4']);
      expect((await store.getModerationLog(room.id, 2)).map((e) => e.targetId)).toEqual(['t3', 't4']);
      expect(log[0]).toMatchObject({ action: 'kick', moderatorId: owner, reason: 'r2' });
    });

    it('deleteRoom drops invitations and the log', async () => {
      const store = subject();
      const { room, owner } = await newRoom(store, { private: true });
      const guest = uid('guest');
      await store.addInvitation(room.id, {
        userId: guest,
        invitedBy: owner,
        at: new Date().toISOString(),
      });
      await store.appendModerationLog(
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
      await store.deleteRoom(room.id);
      await store.createRoom({ ...room }, memberRecord(owner, 'owner'));
      expect(await store.getInvitation(room.id, guest)).toBeNull();
      expect(await store.getModerationLog(room.id, 10)).toEqual([]);
    });
  });
}
