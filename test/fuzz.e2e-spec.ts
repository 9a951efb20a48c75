/**
 * Hostile input over a real socket: thousands of generated frames (malformed
 * JSON, wrong types, deep nesting, huge strings, binary frames, prototype
 * pollution keys, unicode edge cases) sent to the demo app. Every request with
 * an id gets exactly one answer with a documented code, the connection stays
 * open, another user's connection is undisturbed, and the process neither
 * crashes nor grows without bound.
 */
import fc from 'fast-check';
import { ERROR_CODES } from '@nest-streaming/streaming';
import { TestApp, eventually, startDemoApp } from './support/app';
import { WsClient } from './support/ws-client';

jest.setTimeout(120_000);

const FRAMES = 3000;
const MAX_SIZE = 8192;
const KNOWN_TYPES = [
  'ping',
  'create_room',
  'join_room',
  'leave_room',
  'send_message',
  'edit_message',
  'delete_message',
  'add_reaction',
  'remove_reaction',
  'start_typing',
  'stop_typing',
  'get_history',
  'resume',
  'set_presence',
  'get_presence',
  'subscribe',
  'unsubscribe',
  'publish',
  'invite',
  'set_role',
  'moderate',
];
const EVIL_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'room_id',
  'content',
  'channel',
];

type Frame = { kind: 'text'; text: string; id?: string } | { kind: 'binary'; bytes: Buffer };

const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.constantFrom('\u0000', '\uFEFF', '\uD83D\uDE00', 'e\u0301', '\u202E', '𝕏'.repeat(10)),
  fc.integer(),
  fc.constant(null),
);
const evilObject = fc.dictionary(fc.constantFrom(...EVIL_KEYS), anyValue, { maxKeys: 4 });

let counter = 0;
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  // Envelopes of known types with hostile data: these carry ids and must be answered.
  fc
    .record({ type: fc.constantFrom(...KNOWN_TYPES), data: fc.oneof(evilObject, anyValue) })
    .map(({ type, data }) => {
      const id = `f${++counter}`;
      return { kind: 'text' as const, id, text: JSON.stringify({ type, id, data }) };
    }),
  // Unknown types, odd ids, prototype keys at the top level (with a string id to track).
  fc.tuple(fc.string({ unit: 'binary', maxLength: 20 }), fc.boolean()).map(([type, proto]) => {
    const id = `f${++counter}`;
    const evil = proto ? '"__proto__":{"polluted":true},' : '';
    return {
      kind: 'text' as const,
      id,
      text: `{${evil}"type":${JSON.stringify(type)},"id":"${id}"}`,
    };
  }),
  // Malformed or non-envelope text (no id to answer).
  fc
    .oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)),
    )
    .map((text) => ({ kind: 'text' as const, text: text.trim() === '' ? '{' : text })),
  // Deep nesting: 40 to 200 levels inside data.
  fc.integer({ min: 40, max: 200 }).map((depth) => {
    const id = `f${++counter}`;
    return {
      kind: 'text' as const,
      id,
      text: `{"type":"send_message","id":"${id}","data":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    };
  }),
  // Huge strings: just over the limit (answered message_too_large).
  fc.integer({ min: MAX_SIZE + 1, max: MAX_SIZE * 4 }).map((n) => {
    const id = `f${++counter}`;
    return {
      kind: 'text' as const,
      id,
      text: JSON.stringify({ type: 'publish', id, data: { channel: 'x', data: { s: 'a'.repeat(n) } } }),
    };
  }),
  // Binary frames.
  fc.uint8Array({ maxLength: 64 }).map((a) => ({ kind: 'binary' as const, bytes: Buffer.from(a) })),
);

describe('hostile input (fast-check fuzzing over a real socket)', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startDemoApp({
      JWT_SECRET: 'fuzz-e2e-secret-7b20e6d1f9a84c35',
      FORGE_STREAMING_MAX_MESSAGE_SIZE: String(MAX_SIZE),
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000000',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000000',
    });
  });
  afterAll(() => app?.close());

  it(`answers ${FRAMES} generated frames as documented without harming the connection, others, or the process`, async () => {
    const fuzzer = await WsClient.connect(app.wsUrl, { token: await app.login('fuzzer') });
    const victimToken = await app.login('victim');
    const victim = await WsClient.connect(app.wsUrl, { token: victimToken });
    const friend = await WsClient.connect(app.wsUrl, { token: await app.login('friend') });
    const room = (await victim.ok('create_room', { name: 'quiet room' })).room.id as string;
    await friend.ok('join_room', { room_id: room });

    const frames = fc.sample(frameArb, { numRuns: FRAMES, seed: 42 });
    const heapBefore = process.memoryUsage().heapUsed;
    const ids: string[] = [];
    let sent = 0;
    for (const f of frames) {
      if (f.kind === 'binary') fuzzer.sendBinary(f.bytes);
      else {
        fuzzer.sendRaw(f.text);
        if (f.id) ids.push(f.id);
      }
      sent++;
      // Keep the socket's own buffers small and check liveness now and then.
      if (sent % 500 === 0) await fuzzer.ok('ping', {}).catch(() => fuzzer.request('ping'));
    }
    console.log(`fuzz: sent ${sent} frames (${ids.length} with ids) from fast-check seed 42`);

    await eventually(() => {
      const answered = new Set(fuzzer.envelopes.filter((e) => e.id !== undefined).map((e) => e.id));
      const missing = ids.filter((id) => !answered.has(id));
      if (missing.length > 0)
        throw new Error(`${missing.length} requests unanswered, e.g. ${missing.slice(0, 3).join(', ')}`);
    }, 30_000);

    // Exactly one answer per id, and only documented error codes.
    const byId = new Map<string, string[]>();
    for (const e of fuzzer.envelopes) {
      if (e.id === undefined || !e.id.startsWith('f')) continue;
      byId.set(e.id, [...(byId.get(e.id) ?? []), e.type]);
    }
    const doubles = [...byId].filter(
      ([, types]) => types.length !== 1 && !(types.length === 2 && types.includes('pong')),
    );
    expect(doubles.slice(0, 5)).toEqual([]);
    const codes = new Set(
      fuzzer.envelopes.filter((e) => e.type === 'error').map((e) => e.data.code as string),
    );
    for (const code of codes) expect(ERROR_CODES).toContain(code);
    expect(codes.has('invalid_message')).toBe(true);
    expect(codes.has('message_too_large')).toBe(true);
    expect(codes.has('unknown_type')).toBe(true);
    expect(fuzzer.garbage).toEqual([]);

    // The connection still works, the others are undisturbed.
    expect(fuzzer.closeInfo).toBeUndefined();
    expect((await fuzzer.request('ping')).type).toBe('pong');
    const mark = friend.envelopes.length;
    const ack = await victim.ok('send_message', { room_id: room, content: 'still fine' });
    await friend.waitFor((e) => e.type === 'message' && e.data.id === ack.message_id, 3000, mark);
    const victimErrors = victim.envelopes.filter((e) => e.type === 'error');
    expect(victimErrors).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await app.http('GET', '/_/health/streaming')).status).toBe(200);

    // Bounded growth: the in-process server's heap after the run is not far above before.
    global.gc?.();
    const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;
    console.log(`fuzz: heap grew ${grownMb.toFixed(1)} MB`);
    expect(grownMb).toBeLessThan(200);

    await fuzzer.close();
    await victim.close();
    await friend.close();
  });

  it('prototype keys at every request type and every nested object never switch validation off', async () => {
    const attacker = await WsClient.connect(app.wsUrl, { token: await app.login('proto-attacker') });
    const witness = await WsClient.connect(app.wsUrl, { token: await app.login('proto-witness') });
    const room = (await attacker.ok('create_room', { name: 'proto room' })).room.id as string;
    await witness.ok('join_room', { room_id: room });
    const msg = (await attacker.ok('send_message', { room_id: room, content: 'target' }))
      .message_id as string;
    await witness.waitFor((e) => e.type === 'message' && e.data.id === msg);
    const mark = witness.envelopes.length;

    // Each request type with one field of the wrong type: always `invalid_message`.
    const invalid: Record<string, Record<string, unknown>> = {
      create_room: { name: { evil: 1 }, metadata: { a: { b: 1 } } },
      join_room: { room_id: 42 },
      leave_room: { room_id: ['x'] },
      send_message: { room_id: room, content: { evil: 1 }, metadata: { m: { n: 1 } } },
      edit_message: { room_id: room, message_id: msg, content: { evil: 1 } },
      delete_message: { room_id: room, message_id: 7 },
      add_reaction: { room_id: room, message_id: msg, reaction: { evil: 1 } },
      remove_reaction: { room_id: room, message_id: msg, reaction: 5 },
      start_typing: { room_id: { r: 1 } },
      stop_typing: { room_id: null },
      get_history: { room_id: room, limit: 'x' },
      resume: { rooms: 'all' },
      set_presence: { status: 'god', custom: { c: 1 } },
      get_presence: { user_ids: 'everyone' },
      subscribe: { channel: { c: 1 }, filters: { f: { g: 1 } } },
      unsubscribe: { channel: 3 },
      publish: { channel: 'news', data: { d: { e: 1 } }, metadata: 'not an object' },
      invite: { room_id: room, user_id: { u: 1 } },
      set_role: { room_id: room, user_id: 'proto-witness', role: 'god' },
      moderate: { room_id: room, action: 'obliterate', target_id: 'proto-witness' },
    };
    /** Every object inside `data` (data itself included), as key paths. */
    const objectPaths = (v: unknown, path: string[] = []): string[][] =>
      typeof v === 'object' && v !== null && !Array.isArray(v)
        ? [path, ...Object.entries(v).flatMap(([k, c]) => objectPaths(c, [...path, k]))]
        : [];
    /** JSON text of `data` with `key` added (as an own key, the way JSON.parse reads it) at `path`. */
    const inject = (data: Record<string, unknown>, path: string[], key: string, value: unknown): string => {
      const copy = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
      let target = copy;
      for (const k of path) target = target[k] as Record<string, unknown>;
      Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
      return JSON.stringify(copy);
    };
    const values: unknown[] = [{}, { polluted: true, role: 'owner', content: 'x' }, 'str', null];
    let n = 0;
    const answers: Array<{ id: string; type: string; key: string }> = [];
    for (const [type, data] of Object.entries(invalid)) {
      for (const path of objectPaths(data)) {
        for (const key of ['__proto__', 'constructor', 'prototype']) {
          for (const value of values) {
            const id = `p${++n}`;
            attacker.sendRaw(`{"type":"${type}","id":"${id}","data":${inject(data, path, key, value)}}`);
            answers.push({ id, type, key });
          }
        }
      }
    }
    const replies = await Promise.all(answers.map((a) => attacker.waitFor((e) => e.id === a.id, 10_000)));
    const wrong = replies
      .map((r, i) => ({ ...answers[i], got: r.type === 'error' ? (r.data.code as string) : r.type }))
      .filter((r) => r.got !== 'invalid_message');
    expect(wrong).toEqual([]);
    expect(answers.length).toBeGreaterThan(400);
    // Nothing reached the other member, the room and its roles are intact.
    await witness.expectNone((e) => e.type === 'message' || e.type === 'member_role_changed', 300, mark);
    const history = await attacker.ok('get_history', { room_id: room, limit: 10 });
    expect((history.messages as Array<{ content: unknown }>).map((m) => m.content)).toEqual(['target']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await attacker.request('ping')).type).toBe('pong');
    await attacker.close();
    await witness.close();
  });

  it('closes with 1009 beyond 16 times max_message_size and keeps serving others', async () => {
    const big = await WsClient.connect(app.wsUrl, { token: await app.login('big') });
    const other = await WsClient.connect(app.wsUrl, { token: await app.login('other') });
    big.sendRaw(JSON.stringify({ type: 'ping', data: { s: 'x'.repeat(MAX_SIZE * 17) } }));
    expect((await big.waitForClose(5000)).code).toBe(1009);
    expect((await other.request('ping')).type).toBe('pong');
    await other.close();
  });
});
