/**
 * The {@link Broker}'s message log: appends with gap-free seqs, published in
 * seq order, capped, paged, looked up and trimmed. Run by the broker suite.
 */
import { randomUUID } from 'node:crypto';
import type { StoredMessage } from '../interfaces';
import { messageToWire } from '../protocol/wire';
import type { BrokerContractSubject } from './contract-helpers';
import { collect, draftFor, eventually, newRoom, seqs, sleep, uid } from './contract-helpers';

/** The history tests (appends, paging, trimming), in the current `describe`, against `subject()`. */
export function declareHistoryTests(subject: () => BrokerContractSubject, settleMs: number): void {
  it('appendMessage to a room that does not exist is room_not_found and creates nothing', async () => {
    const broker = subject();
    const id = uid('room');
    await expect(broker.appendMessage(id, draftFor(id), { maxHistory: 100 })).rejects.toMatchObject({
      code: 'room_not_found',
    });
    expect(await broker.getRoom(id)).toBeNull();
    expect(await broker.latestSeq(id)).toBe(0);
  });

  it('appendMessage gives seq 1, 2, 3 gap-free and returns the stored message with every draft field', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const drafts = [1, 2, 3].map((i) =>
      draftFor(room.id, { content: `m${i}`, metadata: { i, deep: { list: [i] } } }),
    );
    const stored: StoredMessage[] = [];
    for (const d of drafts) stored.push(await broker.appendMessage(room.id, d, { maxHistory: 100 }));

    expect(seqs(stored)).toEqual([1, 2, 3]);
    stored.forEach((s, i) => expect(s).toEqual({ ...drafts[i], seq: i + 1 }));
    expect(await broker.getHistory(room.id, { limit: 50 })).toEqual(stored);
    expect(await broker.latestSeq(room.id)).toBe(3);
  });

  it('seq is independent per room', async () => {
    const broker = subject();
    const { room: a } = await newRoom(broker);
    const { room: b } = await newRoom(broker);
    const r1 = await broker.appendMessage(a.id, draftFor(a.id), { maxHistory: 100 });
    const r2 = await broker.appendMessage(a.id, draftFor(a.id), { maxHistory: 100 });
    const r3 = await broker.appendMessage(b.id, draftFor(b.id), { maxHistory: 100 });
    const r4 = await broker.appendMessage(a.id, draftFor(a.id), { maxHistory: 100 });
    const r5 = await broker.appendMessage(b.id, draftFor(b.id), { maxHistory: 100 });

    expect(seqs([r1, r2, r4])).toEqual([1, 2, 3]);
    expect(seqs([r3, r5])).toEqual([1, 2]);
    expect(seqs(await broker.getHistory(a.id, { limit: 50 }))).toEqual([1, 2, 3]);
    expect(seqs(await broker.getHistory(b.id, { limit: 50 }))).toEqual([1, 2]);
    expect(await broker.latestSeq(a.id)).toBe(3);
    expect(await broker.latestSeq(b.id)).toBe(2);
  });

  it('50 concurrent appends get exactly seqs 1..50', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const drafts = Array.from({ length: 50 }, () => draftFor(room.id));
    const stored = await Promise.all(
      drafts.map((d) => broker.appendMessage(room.id, d, { maxHistory: 1000 })),
    );

    const got = seqs(stored).sort((x, y) => x - y);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    stored.forEach((s, i) => expect(s).toEqual({ ...drafts[i], seq: s.seq }));

    const history = await broker.getHistory(room.id, { limit: 100 });
    expect(seqs(history)).toEqual(got);
    const byId = new Map(stored.map((s) => [s.id, s]));
    for (const h of history) expect(h).toEqual(byId.get(h.id));
    expect(await broker.latestSeq(room.id)).toBe(50);
  });

  it('publishTopic delivers message envelopes matching messageToWire(stored)', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const topic = uid('room-topic');
    const box = await collect(broker, topic);
    const stored: StoredMessage[] = [];
    for (let i = 0; i < 3; i++) {
      stored.push(
        await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100, publishTopic: topic }),
      );
    }
    // Without publishTopic nothing is published.
    await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });

    await eventually(() => expect(box.payloads).toHaveLength(3));
    await sleep(settleMs);
    expect(box.payloads).toHaveLength(3);
    const envelopes = box.payloads.map((p) => JSON.parse(p) as { type: string; data: unknown });
    expect(envelopes).toEqual(stored.map((s) => ({ type: 'message', data: messageToWire(s) })));
  });

  it('publishTopic delivers concurrent appends exactly once, in strictly increasing seq order', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const topic = uid('room-topic');
    const box = await collect(broker, topic);
    const n = 50;
    const stored = await Promise.all(
      Array.from({ length: n }, () =>
        broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 1000, publishTopic: topic }),
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
    const broker = subject();
    const { room } = await newRoom(broker);
    const stored: StoredMessage[] = [];
    for (let i = 0; i < 5; i++)
      stored.push(await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 3 }));

    expect(seqs(await broker.getHistory(room.id, { limit: 50 }))).toEqual([3, 4, 5]);
    expect(await broker.getMessage(room.id, stored[0].id)).toBeNull();
    expect(await broker.getMessage(room.id, stored[1].id)).toBeNull();
    expect(await broker.getMessage(room.id, stored[2].id)).toEqual(stored[2]);
    expect(await broker.latestSeq(room.id)).toBe(5);
    expect(await broker.oldestSeq(room.id)).toBe(3);

    const next = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 3 });
    expect(next.seq).toBe(6);
    expect(seqs(await broker.getHistory(room.id, { limit: 50 }))).toEqual([4, 5, 6]);
  });

  it('getHistory pages like get_history in PROTOCOL.md', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    for (let i = 0; i < 10; i++) await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    const page = async (q: { limit?: number; before?: number; after?: number }): Promise<number[]> =>
      seqs(await broker.getHistory(room.id, { limit: 50, ...q }));

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
    expect(seqs(await broker.getHistory(uid('nope'), { limit: 50 }))).toEqual([]);
  });

  it('getMessage finds a stored message by id', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const a = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    const b = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    expect(await broker.getMessage(room.id, a.id)).toEqual(a);
    expect(await broker.getMessage(room.id, b.id)).toEqual(b);
    expect(await broker.getMessage(room.id, randomUUID())).toBeNull();
    expect(await broker.getMessage(uid('nope'), a.id)).toBeNull();
  });

  it('latestSeq and oldestSeq track appends and trims', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    expect(await broker.latestSeq(room.id)).toBe(0);
    expect(await broker.oldestSeq(room.id)).toBe(1);

    for (let i = 0; i < 3; i++) await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    expect(await broker.latestSeq(room.id)).toBe(3);
    expect(await broker.oldestSeq(room.id)).toBe(1);

    expect(await broker.trimHistory(room.id, { maxCount: 1 })).toBe(2);
    expect(await broker.oldestSeq(room.id)).toBe(3);
    expect(await broker.latestSeq(room.id)).toBe(3);

    expect(await broker.trimHistory(room.id, { maxCount: 0 })).toBe(1);
    expect(await broker.getHistory(room.id, { limit: 50 })).toEqual([]);
    expect(await broker.latestSeq(room.id)).toBe(3);
    expect(await broker.oldestSeq(room.id)).toBe(4);

    const next = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    expect(next.seq).toBe(4);
    expect(await broker.oldestSeq(room.id)).toBe(4);
    expect(await broker.latestSeq(room.id)).toBe(4);
  });

  it('trimHistory by maxCount drops the oldest and returns how many', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const stored: StoredMessage[] = [];
    for (let i = 0; i < 6; i++)
      stored.push(await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 }));

    expect(await broker.trimHistory(room.id, { maxCount: 10 })).toBe(0);
    expect(await broker.trimHistory(room.id, { maxCount: 4 })).toBe(2);
    expect(seqs(await broker.getHistory(room.id, { limit: 50 }))).toEqual([3, 4, 5, 6]);
    expect(await broker.getMessage(room.id, stored[0].id)).toBeNull();
    expect(await broker.getMessage(room.id, stored[2].id)).toEqual(stored[2]);
    expect(await broker.trimHistory(room.id, { maxCount: 4 })).toBe(0);
    expect(await broker.trimHistory(uid('nope'), { maxCount: 0 })).toBe(0);
  });

  it('trimHistory by olderThan drops messages older than the cutoff', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const now = Date.now();
    const old = [3, 2, 1].map((h) =>
      draftFor(room.id, { timestamp: new Date(now - h * 3600_000).toISOString() }),
    );
    const fresh = [0, 1].map((s) => draftFor(room.id, { timestamp: new Date(now - s * 1000).toISOString() }));
    const stored: StoredMessage[] = [];
    for (const d of [...old, ...fresh])
      stored.push(await broker.appendMessage(room.id, d, { maxHistory: 100 }));

    // Cutoff between the 2h and 1h old messages: two dropped.
    expect(await broker.trimHistory(room.id, { maxCount: 100, olderThan: now - 90 * 60_000 })).toBe(2);
    expect(seqs(await broker.getHistory(room.id, { limit: 50 }))).toEqual([3, 4, 5]);
    expect(await broker.getMessage(room.id, stored[0].id)).toBeNull();
    expect(await broker.oldestSeq(room.id)).toBe(3);

    // Both limits at once: older than 1 minute (one more) and beyond maxCount 1 (one more).
    expect(await broker.trimHistory(room.id, { maxCount: 1, olderThan: now - 60_000 })).toBe(2);
    expect(seqs(await broker.getHistory(room.id, { limit: 50 }))).toEqual([5]);
    expect(await broker.latestSeq(room.id)).toBe(5);
  });
}
