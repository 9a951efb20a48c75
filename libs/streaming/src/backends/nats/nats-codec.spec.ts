import fc from 'fast-check';
import { selectHistory } from '../backend-helpers';
import { decodeRoomLog, encodeRoomLog, pageRange, timestampMs } from './nats-codec';
import { parseNatsUrl, redactNatsUrl } from './nats-connection';
import { NatsNames, decodeToken, encodeToken } from './nats-keys';
import { KeyedQueue, count, isConflict } from './nats-util';
import { NatsError } from 'nats';

/** What KV keys and subject tokens accept. */
const TOKEN = /^[-/_=A-Za-z0-9]+$/;

describe('nats-keys: tokens', () => {
  it('round-trips any string, lone surrogates included, into one valid token', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const t = encodeToken(s);
        expect(t).toMatch(TOKEN);
        expect(decodeToken(t)).toBe(s);
      }),
    );
    for (const s of ['', '.', '*', '>', 'a.b.c', ' ', '\ud800', '\udc00x', '😀', '\ufffd']) {
      expect(encodeToken(s)).toMatch(TOKEN);
      expect(decodeToken(encodeToken(s))).toBe(s);
    }
  });

  it('never maps two strings to the same token', () => {
    expect(encodeToken('\ud800')).not.toBe(encodeToken('\ufffd'));
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        fc.pre(a !== b);
        expect(encodeToken(a)).not.toBe(encodeToken(b));
      }),
    );
  });

  it('builds keys and subjects under the prefix', () => {
    const n = new NatsNames('fs1');
    expect(n.bucket('rooms')).toBe('fs1-rooms');
    expect(n.stream('seqs')).toBe('KV_fs1-seqs');
    expect(n.topicSubject('room:a.b')).toBe(`fs1.t.${encodeToken('room:a.b')}`);
    expect(n.roomLogRepublish()).toEqual({ src: '$KV.fs1-seqs.>', dest: 'fs1.rl.>' });
    expect(n.member('r.1', 'u*')).toBe(`r.${encodeToken('r.1')}.${encodeToken('u*')}`);
    expect(n.messageAt('r', 7)).toBe(`${encodeToken('r')}.s.7`);
    for (const key of [n.member('a', 'b'), n.restriction('a', 'ban', 'b'), n.messageId('a', 'b.c')]) {
      expect(key.split('.').every((t) => TOKEN.test(t))).toBe(true);
    }
    expect(() => new NatsNames('a.b')).toThrow('invalid NATS prefix');
  });
});

describe('nats-codec: room log entries', () => {
  it('round-trip with and without a published envelope', () => {
    const plain = { seq: 0, floor: 1, inc: 'abc' };
    expect(decodeRoomLog(encodeRoomLog(plain))).toEqual(plain);
    const published = {
      seq: 42,
      floor: 3,
      inc: 'i-1',
      topic: 'room:\n"x"',
      envelope: '{"type":"message","data":{"content":"a\\nb"}}',
    };
    expect(decodeRoomLog(encodeRoomLog(published))).toEqual(published);
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string(), (topic, envelope) => {
        const e = { seq: 5, floor: 2, inc: 'x', topic, envelope };
        expect(decodeRoomLog(encodeRoomLog(e))).toEqual(e);
      }),
    );
  });

  it('reads anything else (delete markers, garbage) as null', () => {
    for (const s of ['', 'x', '1 2\n\n', '1 2 3', 'a b c\n\n', '1 2 3\nnot json\n', '1 2 3\n5\n']) {
      expect(decodeRoomLog(s)).toBeNull();
    }
  });

  it('timestampMs never treats garbage as old', () => {
    expect(timestampMs('2024-01-02T03:04:05.678Z')).toBe(Date.parse('2024-01-02T03:04:05.678Z'));
    expect(timestampMs('not a date')).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('nats-codec: pageRange', () => {
  const seqsOf = (lo: number, hi: number): { seq: number }[] =>
    Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => ({ seq: lo + i }));

  it('picks exactly what selectHistory picks from a contiguous history', () => {
    const num = fc.oneof(
      fc.integer({ min: -3, max: 30 }),
      fc.double({ min: -3, max: 30, noNaN: false }),
      fc.constantFrom(Infinity, -Infinity, NaN, 0.5, -0),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 15 }),
        fc.integer({ min: 0, max: 20 }),
        num,
        fc.option(num, { nil: undefined }),
        fc.option(num, { nil: undefined }),
        (floor, size, limit, after, before) => {
          fc.pre(!Number.isNaN(after) && !Number.isNaN(before));
          const last = floor + size - 1;
          const expected = selectHistory(seqsOf(floor, last), { limit, after, before }).map((m) => m.seq);
          // The backend's range arithmetic (see getHistory).
          let lo = floor;
          let hi = last;
          if (after !== undefined) lo = Math.max(lo, Math.floor(after) + 1);
          if (before !== undefined) hi = Math.min(hi, Math.ceil(before) - 1);
          const page = pageRange(lo, hi, limit, after !== undefined);
          const got = page ? seqsOf(page.first, page.last).map((m) => m.seq) : [];
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('nats-connection: parseNatsUrl', () => {
  it('splits credentials off nats:// and tls:// URLs', () => {
    expect(parseNatsUrl('nats://127.0.0.1:4222')).toEqual({ server: 'nats://127.0.0.1:4222' });
    expect(parseNatsUrl('nats://us%40er:p%3Ass@h:4333')).toEqual({
      server: 'nats://h:4333',
      user: 'us@er',
      pass: 'p:ss',
    });
    expect(parseNatsUrl('tls://s3cr3t@h')).toEqual({ server: 'tls://h', token: 's3cr3t' });
    expect(parseNatsUrl('localhost:4222')).toEqual({ server: 'nats://localhost:4222' });
    expect(parseNatsUrl('nats://[::1]:4222')).toEqual({ server: 'nats://[::1]:4222' });
  });

  it('rejects other schemes without leaking the password', () => {
    expect(() => parseNatsUrl('redis://u:secret@h:1')).toThrow('nats:// or tls://');
    expect(() => parseNatsUrl('redis://u:secret@h:1')).not.toThrow('secret');
    expect(redactNatsUrl('nats://u:secret@h:1')).toBe('nats://u:***@h:1');
    expect(redactNatsUrl('nats://token@h:1')).toBe('nats://***@h:1');
  });
});

describe('nats-util', () => {
  it('recognises a lost compare-and-swap', () => {
    const err = new NatsError('wrong last sequence: 4', '400');
    err.api_error = { code: 400, err_code: 10071, description: 'wrong last sequence: 4' };
    expect(isConflict(err)).toBe(true);
    expect(isConflict(new NatsError('timeout', 'TIMEOUT'))).toBe(false);
    expect(isConflict(new Error('wrong last sequence'))).toBe(false);
  });

  it('count clamps like the Redis backend', () => {
    expect([count(Infinity), count(NaN), count(-1), count(2.7)]).toEqual([Number.MAX_SAFE_INTEGER, 0, 0, 2]);
  });

  it('KeyedQueue runs tasks of one key one at a time, in order, and keys independently', async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    const task =
      (name: string, ms: number, fail = false) =>
      async () => {
        log.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`end ${name}`);
        if (fail) throw new Error(name);
        return name;
      };
    const results = await Promise.allSettled([
      q.run('a', task('a1', 20, true)),
      q.run('a', task('a2', 1)),
      q.run('b', task('b1', 5)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'));
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
    await new Promise((r) => setTimeout(r, 0));
    expect(q.size).toBe(0);
  });
});
