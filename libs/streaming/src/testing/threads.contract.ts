/**
 * The {@link Broker}'s threads: replies stored with `replyTo` / `threadId`,
 * and the thread's first message counting its replies atomically
 * (`addReply`). Run by the broker suite.
 */
import { randomUUID } from 'node:crypto';
import { messageToWire } from '../protocol/wire';
import type { BrokerContractSubject } from './contract-helpers';
import { draftFor, newRoom, seqs } from './contract-helpers';

const later = (ms: number): string => new Date(Date.now() + ms).toISOString();

/** The thread tests, in the current `describe`, against `subject()`. */
export function declareThreadTests(subject: () => BrokerContractSubject): void {
  it('stores replyTo and threadId on an appended reply like any other field', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const root = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    const reply = await broker.appendMessage(
      room.id,
      draftFor(room.id, { replyTo: root.id, threadId: root.id }),
      { maxHistory: 100 },
    );
    expect(reply).toMatchObject({ seq: 2, replyTo: root.id, threadId: root.id });
    expect(await broker.getMessage(room.id, reply.id)).toEqual(reply);
    const history = await broker.getHistory(room.id, { limit: 10 });
    expect(history[1]).toEqual(reply);
    expect(messageToWire(history[1])).toMatchObject({ reply_to: root.id, thread_id: root.id });
    expect(messageToWire(history[0]).reply_count).toBeUndefined();
  });

  it('addReply counts replies and keeps the latest reply time, leaving the rest as it was', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const root = await broker.appendMessage(room.id, draftFor(room.id, { content: 'root' }), {
      maxHistory: 100,
    });
    const at1 = later(1000);
    const at2 = later(2000);

    const one = await broker.addReply(room.id, root.id, at1);
    expect(one).toMatchObject({
      id: root.id,
      seq: root.seq,
      content: 'root',
      replyCount: 1,
      lastReplyAt: at1,
    });
    const two = await broker.addReply(room.id, root.id, at2);
    expect(two).toMatchObject({ replyCount: 2, lastReplyAt: at2 });
    // An older reply time (a racing node's clock) does not move lastReplyAt back.
    const three = await broker.addReply(room.id, root.id, at1);
    expect(three).toMatchObject({ replyCount: 3, lastReplyAt: at2 });

    const stored = await broker.getMessage(room.id, root.id);
    expect(stored).toEqual(three);
    expect(stored).toMatchObject({
      userId: root.userId,
      metadata: root.metadata,
      timestamp: root.timestamp,
      reactions: {},
    });
    const [inHistory] = await broker.getHistory(room.id, { limit: 10 });
    expect(messageToWire(inHistory)).toMatchObject({ reply_count: 3, last_reply_at: at2 });
    expect(await broker.latestSeq(room.id)).toBe(1);
  });

  it('edits and reactions keep the reply counters, and replies keep edits and reactions', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const root = await broker.appendMessage(room.id, draftFor(room.id, { content: 'v1' }), {
      maxHistory: 100,
    });
    const at = later(1000);
    await broker.addReply(room.id, root.id, at);
    const edited = await broker.updateMessage(room.id, root.id, {
      kind: 'edit',
      content: 'v2',
      by: root.userId,
      at: later(1500),
      keepVersions: 5,
    });
    expect(edited?.message).toMatchObject({ content: 'v2', replyCount: 1, lastReplyAt: at });
    await broker.updateMessage(room.id, root.id, {
      kind: 'react',
      reaction: '👍',
      userId: 'u1',
      add: true,
      maxReactions: 10,
    });
    const at3 = later(3000);
    const after = await broker.addReply(room.id, root.id, at3);
    expect(after).toMatchObject({
      content: 'v2',
      reactions: { '👍': ['u1'] },
      replyCount: 2,
      lastReplyAt: at3,
    });
    expect(after?.versions?.map((v) => v.content)).toEqual(['v1']);
  });

  it('addReply is null for an unknown message, another room or a deleted one', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const { room: other } = await newRoom(broker);
    const msg = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });

    expect(await broker.addReply(room.id, randomUUID(), later(0))).toBeNull();
    expect(await broker.addReply(other.id, msg.id, later(0))).toBeNull();

    await broker.updateMessage(room.id, msg.id, {
      kind: 'delete',
      by: msg.userId,
      at: later(500),
      keepVersions: 5,
    });
    expect(await broker.addReply(room.id, msg.id, later(1000))).toBeNull();
    const stored = await broker.getMessage(room.id, msg.id);
    expect(stored?.deleted).toBe(true);
    expect(stored?.replyCount).toBeUndefined();
  });

  it('counts 20 concurrent replies exactly', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const root = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 1000 });
    const n = 20;
    const results = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const at = later(i * 10);
        const reply = await broker.appendMessage(
          room.id,
          draftFor(room.id, { replyTo: root.id, threadId: root.id, timestamp: at }),
          { maxHistory: 1000 },
        );
        const parent = await broker.addReply(room.id, root.id, at);
        return { reply, parent };
      }),
    );
    // Every caller saw a distinct count: each increment was atomic.
    expect(results.map((r) => r.parent?.replyCount).sort((a, b) => a! - b!)).toEqual(
      Array.from({ length: n }, (_, i) => i + 1),
    );
    const stored = await broker.getMessage(room.id, root.id);
    expect(stored?.replyCount).toBe(n);
    expect(stored?.lastReplyAt).toBe(results.map((r) => r.reply.timestamp).sort()[n - 1]);
    const history = await broker.getHistory(room.id, { limit: 100 });
    expect(seqs(history)).toEqual(Array.from({ length: n + 1 }, (_, i) => i + 1));
    expect(history.filter((m) => m.threadId === root.id)).toHaveLength(n);
  });
}
