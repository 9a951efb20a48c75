import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeBackendContract } from '../backend.contract';
import { LocalBackend } from './local.backend';
import { SqlitePersistence } from './sqlite-persistence';

const dir = mkdtempSync(join(tmpdir(), 'streaming-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
describeBackendContract(
  'local + sqlite',
  async () => new LocalBackend(new SqlitePersistence(join(dir, `c${n++}.db`))),
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
});
