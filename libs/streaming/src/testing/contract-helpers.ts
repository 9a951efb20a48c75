/**
 * What the contract suites share: `eventually`, random ids, record builders,
 * and the harness that gives each test a fresh, connected subject.
 *
 * Ids are random so that a shared Redis / NATS server can be reused across tests.
 */
import { randomUUID } from 'node:crypto';
import type {
  Broker,
  MemberRecord,
  MessageDraft,
  RoomRecord,
  RoomRole,
  RoomStore,
  StoredMessage,
} from '../interfaces';

/** Returns a fresh subject (a store, a port implementation or a whole backend) for one test. */
export type ContractSubjectFactory<T> = () => T | Promise<T>;

/** What the harness calls on a subject that has them: `connect()` before each test, `close()` after it. */
interface MaybeLifecycle {
  connect?: () => Promise<void> | void;
  close?: () => Promise<void> | void;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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

export const uid = (prefix: string): string => `${prefix}-${randomUUID()}`;

export const seqs = (messages: StoredMessage[]): number[] => messages.map((m) => m.seq);
export const sorted = (xs: string[]): string[] => [...xs].sort();

export function roomRecord(overrides: Partial<RoomRecord> = {}): RoomRecord {
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

export function memberRecord(userId: string, role: RoomRole = 'member'): MemberRecord {
  return { userId, role, joinedAt: new Date().toISOString() };
}

export function draftFor(roomId: string, overrides: Partial<MessageDraft> = {}): MessageDraft {
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

/** Create a room owned by a fresh user (or `overrides.owner`); returns the room and its owner id. */
export async function newRoom(
  store: Pick<RoomStore, 'createRoom'>,
  overrides: Partial<RoomRecord> = {},
): Promise<{ room: RoomRecord; owner: string }> {
  const owner = overrides.owner ?? uid('owner');
  const room = roomRecord({ ...overrides, owner });
  await store.createRoom(room, memberRecord(owner, 'owner'));
  return { room, owner };
}

/** Subscribe a handler to `topic` that collects what arrives. */
export async function collect(
  broker: Pick<Broker, 'subscribe'>,
  topic: string,
): Promise<{ payloads: string[]; topics: string[] }> {
  const box = { payloads: [] as string[], topics: [] as string[] };
  await broker.subscribe(topic, (payload, t) => {
    box.payloads.push(payload);
    box.topics.push(t);
  });
  return box;
}

/**
 * Declares, in the enclosing `describe`, a `beforeEach` that creates the subject
 * with `factory` and calls its `connect()` if it has one, and an `afterEach` that
 * calls its `close()` if it has one. Returns the current test's subject.
 */
export function useSubject<T>(factory: ContractSubjectFactory<T>): () => T {
  let subject: T | undefined;

  beforeEach(async () => {
    subject = await factory();
    await (subject as MaybeLifecycle).connect?.();
  });

  afterEach(async () => {
    const current = subject as MaybeLifecycle | undefined;
    subject = undefined;
    await current?.close?.();
  });

  return () => {
    if (subject === undefined) throw new Error('the contract subject is only available inside a test');
    return subject;
  };
}

/**
 * What the broker suite tests: a {@link Broker}, plus the part of the
 * {@link RoomStore} that its history needs (rooms must exist to be appended to).
 */
export type BrokerContractSubject = Broker & Pick<RoomStore, 'createRoom' | 'getRoom'>;
