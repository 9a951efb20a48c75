/**
 * The {@link PresenceStore} contract: presence with a TTL, the directory of
 * which nodes hold a user's connections, connection counts per user with a
 * cluster-wide maximum, and expiring sets.
 */
import type { PresenceRecord, PresenceStore } from '../interfaces';
import { eventually, sorted, uid, useSubject, type ContractSubjectFactory } from './contract-helpers';

/**
 * Declares the behaviour every {@link PresenceStore} must show, against a fresh
 * subject per test (`connect()`ed before and `close()`d after it, when it has them).
 */
export function describePresenceStoreContract(
  name: string,
  factory: ContractSubjectFactory<PresenceStore>,
): void {
  describe(`PresenceStore contract: ${name}`, () => {
    declarePresenceStoreTests(useSubject(factory));
  });
}

/** The presence store's tests, in the current `describe`, against `subject()`. */
export function declarePresenceStoreTests(subject: () => PresenceStore): void {
  describe('presence', () => {
    const presence = (over: Partial<PresenceRecord> = {}): PresenceRecord => ({
      userId: uid('user'),
      status: 'online',
      lastSeen: new Date().toISOString(),
      ...over,
    });

    it('set, get and remove presence', async () => {
      const store = subject();
      const a = presence({ custom: 'coding' });
      const b = presence({ status: 'away' });
      const missing = uid('missing');
      await store.setPresence(a, 60);
      await store.setPresence(b, 60);

      const got = await store.getPresence([a.userId, missing, b.userId]);
      expect(got).toHaveLength(2);
      expect(got).toEqual(expect.arrayContaining([a, b]));
      expect(await store.getPresence([])).toEqual([]);

      const a2 = { ...a, status: 'busy' as const, custom: undefined };
      delete a2.custom;
      await store.setPresence(a2, 60);
      expect(await store.getPresence([a.userId])).toEqual([a2]);

      await store.removePresence(a.userId);
      expect(await store.getPresence([a.userId, b.userId])).toEqual([b]);
      await store.removePresence(missing);
    });

    it('presence expires after its TTL', async () => {
      const store = subject();
      const p = presence();
      const keep = presence();
      await store.setPresence(p, 0.2);
      await store.setPresence(keep, 60);
      expect(await store.getPresence([p.userId])).toEqual([p]);

      await eventually(async () => expect(await store.getPresence([p.userId])).toEqual([]));
      expect(await store.getPresence([keep.userId])).toEqual([keep]);
    });
  });

  describe('connection directory', () => {
    it('tracks the nodes of a user and the users of a node', async () => {
      const store = subject();
      const [u1, u2, n1, n2] = [uid('user'), uid('user'), uid('node'), uid('node')];
      await store.addUserNode(u1, n1);
      await store.addUserNode(u1, n2);
      await store.addUserNode(u2, n1);
      await store.addUserNode(u2, n1);
      expect(sorted(await store.userNodes(u1))).toEqual(sorted([n1, n2]));
      expect(sorted(await store.nodeUsers(n1))).toEqual(sorted([u1, u2]));
      await store.removeUserNode(u1, n1);
      expect(await store.userNodes(u1)).toEqual([n2]);
      expect(await store.nodeUsers(n1)).toEqual([u2]);
      await store.removeUserNode(u2, n1);
      await store.removeUserNode(u2, n1);
      expect(await store.nodeUsers(n1)).toEqual([]);
      expect(await store.userNodes(uid('nobody'))).toEqual([]);
    });
  });

  describe('connections per user', () => {
    it('sums the counts of every node and refuses an increase past max', async () => {
      const store = subject();
      const [u, n1, n2] = [uid('user'), uid('node'), uid('node')];
      expect(await store.userConnections(u)).toEqual({});
      expect(await store.setUserConnections(u, n1, 2, { max: 3 })).toBe(true);
      expect(await store.setUserConnections(u, n2, 1, { max: 3 })).toBe(true);
      expect(await store.userConnections(u)).toEqual({ [n1]: 2, [n2]: 1 });
      // A fourth connection on either node is refused and changes nothing.
      expect(await store.setUserConnections(u, n2, 2, { max: 3 })).toBe(false);
      expect(await store.setUserConnections(u, n1, 3, { max: 3 })).toBe(false);
      expect(await store.userConnections(u)).toEqual({ [n1]: 2, [n2]: 1 });
      // Lowering is always accepted; 0 removes the entry.
      expect(await store.setUserConnections(u, n1, 0, { max: 3 })).toBe(true);
      expect(await store.userConnections(u)).toEqual({ [n2]: 1 });
      expect(await store.setUserConnections(u, n1, 2, { max: 3 })).toBe(true);
      // Without max, any count is recorded.
      expect(await store.setUserConnections(u, n2, 9)).toBe(true);
      expect(await store.userConnections(u)).toEqual({ [n1]: 2, [n2]: 9 });
    });

    it('does not count, and removes, the entries of dead nodes', async () => {
      const store = subject();
      const [u, live, dead] = [uid('user'), uid('node'), uid('node')];
      await store.setUserConnections(u, dead, 3);
      expect(await store.setUserConnections(u, live, 1, { max: 3 })).toBe(false);
      expect(await store.setUserConnections(u, live, 1, { max: 3, deadNodes: [dead] })).toBe(true);
      expect(await store.userConnections(u)).toEqual({ [live]: 1 });
    });

    it('admits exactly max under concurrent claims from several nodes', async () => {
      const store = subject();
      const u = uid('user');
      const nodes = Array.from({ length: 6 }, () => uid('node'));
      const results = await Promise.all(nodes.map((n) => store.setUserConnections(u, n, 1, { max: 4 })));
      expect(results.filter(Boolean)).toHaveLength(4);
      const counts = await store.userConnections(u);
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(4);
    });
  });

  describe('expiring sets', () => {
    it('adds, renews and lists live members, refusing past max', async () => {
      const store = subject();
      const key = uid('set');
      expect(await store.listExpiring(key)).toEqual([]);
      const a = await store.touchExpiring(key, 'a', 60_000, 2);
      expect(a).toMatchObject({ added: true });
      expect(a!.expires).toBeGreaterThan(Date.now() + 50_000);
      expect(await store.touchExpiring(key, 'b', 60_000, 2)).toMatchObject({ added: true });
      // Full: a third member is refused, the present ones renew.
      expect(await store.touchExpiring(key, 'c', 60_000, 2)).toBeNull();
      expect(await store.touchExpiring(key, 'a', 60_000, 2)).toMatchObject({ added: false });
      expect(sorted(await store.listExpiring(key))).toEqual(['a', 'b']);
      expect(await store.listExpiring(uid('other'))).toEqual([]);
    });

    it('expired members are not listed, do not count towards max, and come back as added', async () => {
      const store = subject();
      const key = uid('set');
      await store.touchExpiring(key, 'a', 100, 1);
      await eventually(async () => expect(await store.listExpiring(key)).toEqual([]));
      expect(await store.touchExpiring(key, 'b', 60_000, 1)).toMatchObject({ added: true });
      expect(await store.touchExpiring(key, 'a', 60_000, 2)).toMatchObject({ added: true });
    });

    it('removeExpiring with a stamp removes only what was not renewed since', async () => {
      const store = subject();
      const key = uid('set');
      const first = (await store.touchExpiring(key, 'a', 100, 5))!;
      await new Promise((r) => setTimeout(r, 5));
      const second = (await store.touchExpiring(key, 'a', 60_000, 5))!;
      expect(second.expires).not.toBe(first.expires);
      expect(await store.removeExpiring(key, 'a', first.expires)).toBe(false);
      expect(await store.listExpiring(key)).toEqual(['a']);
      expect(await store.removeExpiring(key, 'a', second.expires)).toBe(true);
      expect(await store.removeExpiring(key, 'a')).toBe(false);
      await store.touchExpiring(key, 'b', 60_000, 5);
      expect(await store.removeExpiring(key, 'b')).toBe(true);
      expect(await store.listExpiring(key)).toEqual([]);
    });

    it('an expired member can still be removed by its stamp (its owner announces the end)', async () => {
      const store = subject();
      const key = uid('set');
      const t = (await store.touchExpiring(key, 'a', 50, 5))!;
      await new Promise((r) => setTimeout(r, 120));
      expect(await store.listExpiring(key)).toEqual([]);
      expect(await store.removeExpiring(key, 'a', t.expires)).toBe(true);
    });

    it('admits exactly max members under concurrent touches', async () => {
      const store = subject();
      const key = uid('set');
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.touchExpiring(key, `m${i}`, 60_000, 3)),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(3);
      expect(await store.listExpiring(key)).toHaveLength(3);
    });
  });
}
