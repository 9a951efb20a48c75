import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeBackendContract } from '../../testing';
import { LocalBackend } from './local.backend';
import { SqlitePersistence } from './sqlite-persistence';

const dir = mkdtempSync(join(tmpdir(), 'streaming-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
describeBackendContract(
  'local + sqlite',
  async () => new LocalBackend(new SqlitePersistence(join(dir, `c${n++}.db`))),
);
// The file is the source of truth: a cache far smaller than what the tests write (a room and
// its owner are 2 entries, each message 1) behaves the same, reading what it dropped back.
describeBackendContract(
  'local + sqlite, a cache of 10 entries',
  async () => new LocalBackend(new SqlitePersistence(join(dir, `t${n++}.db`)), { cacheEntries: 10 }),
);

describe('local backend with SQLite persistence', () => {
  it('finds rooms, members, bans, invitations, the log and history (with edits and reactions) after a restart', async () => {
    const file = join(dir, 'restart.db');
    const a = new LocalBackend(new SqlitePersistence(file));
    await a.connect();
    const now = new Date().toISOString();
    await a.createRoom(
      {
        id: 'r1',
        name: 'R',
        description: '',
        private: true,
        owner: 'o',
        maxMembers: 3,
        createdAt: now,
        metadata: {},
      },
      { userId: 'o', role: 'owner', joinedAt: now },
    );
    await a.addMember('r1', { userId: 'm', role: 'member', joinedAt: now }, {});
    await a.setMemberRole('r1', 'm', 'moderator');
    await a.setRestriction('r1', { kind: 'ban', userId: 'b', by: 'o', reason: 'spam', at: now, until: null });
    await a.addInvitation('r1', { userId: 'g', invitedBy: 'o', at: now });
    await a.appendModerationLog(
      'r1',
      { action: 'ban', roomId: 'r1', moderatorId: 'o', targetId: 'b', reason: 'spam', at: now },
      10,
    );
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const m = await a.appendMessage(
        'r1',
        {
          id: `m${i}`,
          roomId: 'r1',
          userId: 'o',
          content: `c${i}`,
          metadata: {},
          timestamp: now,
          reactions: {},
        },
        { maxHistory: 4 },
      );
      ids.push(m.id);
    }
    await a.updateMessage('r1', 'm3', {
      kind: 'edit',
      content: 'edited',
      by: 'o',
      at: now,
      keepVersions: 20,
    });
    await a.updateMessage('r1', 'm4', {
      kind: 'react',
      reaction: '👍',
      userId: 'm',
      add: true,
      maxReactions: 50,
    });
    await a.updateMessage('r1', 'm5', { kind: 'delete', by: 'o', at: now, keepVersions: 20 });
    await a.close();

    const b = new LocalBackend(new SqlitePersistence(file));
    await b.connect();
    expect((await b.getRoom('r1'))?.maxMembers).toBe(3);
    expect((await b.getMember('r1', 'm'))?.role).toBe('moderator');
    expect(await b.userRooms('m')).toEqual(['r1']);
    expect((await b.getRestriction('r1', 'ban', 'b'))?.reason).toBe('spam');
    expect(await b.getInvitation('r1', 'g')).not.toBeNull();
    expect((await b.getModerationLog('r1', 10)).map((e) => e.targetId)).toEqual(['b']);
    const history = await b.getHistory('r1', { limit: 50 });
    expect(history.map((m) => m.seq)).toEqual([2, 3, 4, 5]);
    expect(history.map((m) => m.content)).toEqual(['c2', 'edited', 'c4', '']);
    expect(history[1].versions?.[0].content).toBe('c3');
    expect(history[2].reactions).toEqual({ '👍': ['m'] });
    expect(history[3].deleted).toBe(true);
    expect(await b.latestSeq('r1')).toBe(5);
    const next = await b.appendMessage(
      'r1',
      { id: 'm6', roomId: 'r1', userId: 'o', content: 'c6', metadata: {}, timestamp: now, reactions: {} },
      { maxHistory: 4 },
    );
    expect(next.seq).toBe(6);
    await b.close();
  });

  it('writes to disk before memory: a failed write leaves no message, no used seq, and a restart agrees', async () => {
    const file = join(dir, 'failing.db');
    const persistence = new SqlitePersistence(file);
    const a = new LocalBackend(persistence);
    await a.connect();
    const now = new Date().toISOString();
    const room = {
      id: 'r',
      name: 'R',
      description: '',
      private: false,
      owner: 'o',
      maxMembers: null,
      createdAt: now,
      metadata: {},
    };
    await a.createRoom(room, { userId: 'o', role: 'owner', joinedAt: now });
    const draft = (id: string) => ({
      id,
      roomId: 'r',
      userId: 'o',
      content: id,
      metadata: {},
      timestamp: now,
      reactions: {},
    });
    expect((await a.appendMessage('r', draft('m1'), { maxHistory: 10 })).seq).toBe(1);

    const append = jest.spyOn(persistence, 'appendMessage').mockImplementationOnce(() => {
      throw new Error('disk full');
    });
    await expect(a.appendMessage('r', draft('lost'), { maxHistory: 10 })).rejects.toThrow('disk full');
    expect(await a.latestSeq('r')).toBe(1);
    expect(await a.getMessage('r', 'lost')).toBeNull();
    const save = jest.spyOn(persistence, 'saveMessage').mockImplementationOnce(() => {
      throw new Error('disk full');
    });
    await expect(
      a.updateMessage('r', 'm1', { kind: 'edit', content: 'not kept', by: 'o', at: now, keepVersions: 20 }),
    ).rejects.toThrow('disk full');
    expect((await a.getMessage('r', 'm1'))?.content).toBe('m1');
    append.mockRestore();
    save.mockRestore();

    expect((await a.appendMessage('r', draft('m2'), { maxHistory: 10 })).seq).toBe(2);
    await a.close();
    const b = new LocalBackend(new SqlitePersistence(file));
    await b.connect();
    expect((await b.getHistory('r', { limit: 10 })).map((m) => [m.seq, m.content])).toEqual([
      [1, 'm1'],
      [2, 'm2'],
    ]);
    await b.close();
  });
  it('keeps read state across a reopen, and drops it with the room', async () => {
    const file = join(dir, 'reads.db');
    const now = new Date().toISOString();
    const room = (id: string) => ({
      id,
      name: id,
      description: '',
      private: false,
      owner: 'o',
      maxMembers: null,
      createdAt: now,
      metadata: {},
    });
    const a = new LocalBackend(new SqlitePersistence(file));
    await a.connect();
    await a.createRoom(room('r1'), { userId: 'o', role: 'owner', joinedAt: now });
    await a.createRoom(room('r2'), { userId: 'o', role: 'owner', joinedAt: now });
    expect(await a.markRead('r1', 'u', 4)).toBe(4);
    expect(await a.markRead('r1', 'u', 2)).toBe(4);
    expect(await a.markRead('r1', 'v', 1)).toBe(1);
    expect(await a.markRead('r2', 'u', 3)).toBe(3);
    await a.close();

    const b = new LocalBackend(new SqlitePersistence(file));
    await b.connect();
    expect(await b.readSeqs('u', ['r1', 'r2', 'r3'])).toEqual({ r1: 4, r2: 3, r3: 0 });
    expect(await b.readSeqs('v', ['r1'])).toEqual({ r1: 1 });
    expect(await b.markRead('r1', 'u', 3)).toBe(4);
    expect(await b.markRead('r1', 'u', 6)).toBe(6);
    await b.deleteRoom('r2');
    await b.close();

    const c = new LocalBackend(new SqlitePersistence(file));
    await c.connect();
    expect(await c.readSeqs('u', ['r1', 'r2'])).toEqual({ r1: 6, r2: 0 });
    await c.createRoom(room('r2'), { userId: 'o', role: 'owner', joinedAt: now });
    expect(await c.readSeqs('u', ['r2'])).toEqual({ r2: 0 });
    await c.close();
  });
});
