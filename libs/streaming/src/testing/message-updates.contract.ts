/**
 * The {@link Broker}'s message updates: edits and deletions keeping an audit
 * trail of versions, and reactions. Run by the broker suite.
 */
import { randomUUID } from 'node:crypto';
import { messageToWire } from '../protocol/wire';
import type { BrokerContractSubject } from './contract-helpers';
import { draftFor, newRoom, seqs, uid } from './contract-helpers';

/** The `updateMessage` tests, in the current `describe`, against `subject()`. */
export function declareMessageUpdateTests(subject: () => BrokerContractSubject): void {
  it('updateMessage edit changes the content and keeps the previous one in versions', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const before = await broker.appendMessage(room.id, draftFor(room.id, { content: 'first' }), {
      maxHistory: 100,
    });
    await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    const editor = uid('editor');
    const at1 = new Date(Date.now() + 1000).toISOString();

    const r1 = await broker.updateMessage(room.id, before.id, {
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
    const r2 = await broker.updateMessage(room.id, before.id, {
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

    expect(await broker.getMessage(room.id, before.id)).toEqual(r2?.message);
    const history = await broker.getHistory(room.id, { limit: 50 });
    expect(seqs(history)).toEqual([1, 2]);
    expect(history[0]).toEqual(r2?.message);
    expect(await broker.latestSeq(room.id)).toBe(2);
  });

  it('updateMessage keeps at most keepVersions versions, dropping the oldest', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    // Contents that a naive JSON splitter or a JSON re-encoding would break.
    const v = (i: number): string => `v${i} "}{][,\\" \ud800 \\u0022`;
    const msg = await broker.appendMessage(room.id, draftFor(room.id, { content: v(0) }), {
      maxHistory: 100,
    });
    for (let i = 1; i <= 6; i++) {
      const at = new Date(Date.now() + i * 1000).toISOString();
      await broker.updateMessage(room.id, msg.id, {
        kind: 'edit',
        content: v(i),
        by: 'e',
        at,
        keepVersions: 3,
      });
    }
    const edited = await broker.getMessage(room.id, msg.id);
    expect(edited?.content).toBe(v(6));
    expect(edited?.versions?.map((x) => x.content)).toEqual([v(3), v(4), v(5)]);
    const at = new Date(Date.now() + 9000).toISOString();
    const del = await broker.updateMessage(room.id, msg.id, {
      kind: 'delete',
      by: 'm',
      at,
      keepVersions: 3,
    });
    expect(del?.message.versions?.map((x) => x.content)).toEqual([v(4), v(5), v(6)]);
  });

  it('updateMessage refuses a new reaction beyond maxReactions (limited) but not more users on one', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const msg = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    const react = (reaction: string, userId: string, add = true) =>
      broker.updateMessage(room.id, msg.id, { kind: 'react', reaction, userId, add, maxReactions: 2 });
    expect((await react('a', 'u1'))?.changed).toBe(true);
    expect((await react('b', 'u1'))?.changed).toBe(true);
    const refused = await react('c', 'u1');
    expect(refused).toMatchObject({ changed: false, limited: true });
    expect(Object.keys(refused!.message.reactions)).toEqual(['a', 'b']);
    expect((await react('a', 'u2'))?.changed).toBe(true);
    expect((await react('b', 'u1', false))?.changed).toBe(true);
    expect((await react('c', 'u1'))?.changed).toBe(true);
    expect((await broker.getMessage(room.id, msg.id))?.reactions).toEqual({
      a: ['u1', 'u2'],
      c: ['u1'],
    });
  });

  it('updateMessage delete leaves a tombstone in history with the old content in versions', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const msg = await broker.appendMessage(room.id, draftFor(room.id, { content: 'secret' }), {
      maxHistory: 100,
    });
    await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    const mod = uid('mod');
    const at = new Date().toISOString();

    const r = await broker.updateMessage(room.id, msg.id, {
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

    const history = await broker.getHistory(room.id, { limit: 50 });
    expect(seqs(history)).toEqual([1, 2]);
    expect(history[0]).toEqual(r?.message);
    expect(await broker.getMessage(room.id, msg.id)).toEqual(r?.message);

    const again = await broker.updateMessage(room.id, msg.id, {
      kind: 'delete',
      by: mod,
      at,
      keepVersions: 20,
    });
    expect(again?.changed).toBe(false);
    expect(again?.message.deleted).toBe(true);
  });

  it('updateMessage react adds and removes one reaction per user per emoji', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const msg = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    const [u1, u2] = [uid('u1'), uid('u2')];
    const react = (reaction: string, userId: string, add: boolean) =>
      broker.updateMessage(room.id, msg.id, { kind: 'react', reaction, userId, add, maxReactions: 50 });

    const a = await react('👍', u1, true);
    expect(a?.changed).toBe(true);
    expect(a?.message.reactions).toEqual({ '👍': [u1] });

    const dup = await react('👍', u1, true);
    expect(dup?.changed).toBe(false);
    expect(dup?.message.reactions).toEqual({ '👍': [u1] });

    expect((await react('👍', u2, true))?.message.reactions).toEqual({ '👍': [u1, u2] });
    expect((await react('🎉', u2, true))?.message.reactions).toEqual({ '👍': [u1, u2], '🎉': [u2] });
    expect((await broker.getMessage(room.id, msg.id))?.reactions).toEqual({
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
    expect(Object.keys((await broker.getMessage(room.id, msg.id))!.reactions)).toEqual(['👍']);

    expect((await react('🎉', u2, false))?.changed).toBe(false);
    expect((await broker.getHistory(room.id, { limit: 50 }))[0].reactions).toEqual({ '👍': [u2] });
  });

  it('a reaction named "__proto__" is a plain key and does not pollute Object.prototype', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const msg = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    const user = uid('u');
    const protoNamesBefore = Object.getOwnPropertyNames(Object.prototype).sort();

    const r = await broker.updateMessage(room.id, msg.id, {
      kind: 'react',
      reaction: '__proto__',
      userId: user,
      add: true,
      maxReactions: 50,
    });
    expect(r?.changed).toBe(true);
    for (const reactions of [r!.message.reactions, (await broker.getMessage(room.id, msg.id))!.reactions]) {
      expect(Object.keys(reactions)).toEqual(['__proto__']);
      expect(Object.getOwnPropertyDescriptor(reactions, '__proto__')?.value).toEqual([user]);
    }
    expect(
      (JSON.parse(JSON.stringify(messageToWire(r!.message))) as { reactions: unknown }).reactions,
    ).toEqual(JSON.parse(`{"__proto__":${JSON.stringify([user])}}`));

    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoNamesBefore);
    expect(({} as Record<string, unknown>)[0]).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);

    const dup = await broker.updateMessage(room.id, msg.id, {
      kind: 'react',
      reaction: '__proto__',
      userId: user,
      add: true,
      maxReactions: 50,
    });
    expect(dup?.changed).toBe(false);

    const rm = await broker.updateMessage(room.id, msg.id, {
      kind: 'react',
      reaction: '__proto__',
      userId: user,
      add: false,
      maxReactions: 50,
    });
    expect(rm?.changed).toBe(true);
    expect(Object.keys(rm!.message.reactions)).toEqual([]);
    expect(Object.keys((await broker.getMessage(room.id, msg.id))!.reactions)).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoNamesBefore);
  });

  it('updateMessage of an unknown message or room is null', async () => {
    const broker = subject();
    const { room } = await newRoom(broker);
    const msg = await broker.appendMessage(room.id, draftFor(room.id), { maxHistory: 100 });
    const at = new Date().toISOString();
    expect(
      await broker.updateMessage(room.id, randomUUID(), {
        kind: 'edit',
        content: 'x',
        by: 'u',
        at,
        keepVersions: 20,
      }),
    ).toBeNull();
    expect(
      await broker.updateMessage(room.id, randomUUID(), {
        kind: 'delete',
        by: 'u',
        at,
        keepVersions: 20,
      }),
    ).toBeNull();
    expect(
      await broker.updateMessage(room.id, randomUUID(), {
        kind: 'react',
        reaction: '👍',
        userId: 'u',
        add: true,
        maxReactions: 50,
      }),
    ).toBeNull();
    expect(
      await broker.updateMessage(uid('nope'), msg.id, {
        kind: 'edit',
        content: 'x',
        by: 'u',
        at,
        keepVersions: 20,
      }),
    ).toBeNull();
    expect(await broker.getMessage(room.id, msg.id)).toEqual(msg);
  });
}
