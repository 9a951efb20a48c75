import { randomUUID } from 'node:crypto';
import { encodeEnvelope } from '../../protocol/envelope';
import { encodeMessageEnvelope, messageToWire } from '../../protocol/wire';
import {
  FIELD_SEP,
  MESSAGE_FIELDS,
  decodeMember,
  decodeMessageRecord,
  decodeRestriction,
  encodeMember,
  encodeMessageRecord,
  encodeRestriction,
  roomFromHash,
  roomToHashArgs,
  splitMessageEnvelope,
  timestampMs,
} from './redis-codec';
import { parseRedisUrl, redactUrl } from './redis-connection';
import { RedisKeys } from './redis-keys';
import { type MessageDraft, type Restriction, type RoomRecord } from '../../interfaces';

function tricky(over: Partial<MessageDraft> = {}): MessageDraft {
  return {
    id: randomUUID(),
    roomId: 'room-1',
    userId: 'user "q" \x1f \\',
    content: 'a\x1fb\x1ec\x1dd \ud800 😀 \u2028',
    metadata: JSON.parse('{"z":1,"a":0.30000000000000004,"e":[],"__proto__":{"x":1}}') as Record<
      string,
      unknown
    >,
    timestamp: '2024-01-02T03:04:05.678Z',
    reactions: JSON.parse('{"__proto__":["u1"],"👍":["u2","u3"]}') as Record<string, string[]>,
    ...over,
  };
}

describe('redis-codec: message records', () => {
  it('round-trips a draft with separators, lone surrogates and a __proto__ reaction', () => {
    const d = tricky();
    const record = encodeMessageRecord(7, d);
    expect(record.split(FIELD_SEP)).toHaveLength(MESSAGE_FIELDS);
    const back = decodeMessageRecord(record);
    expect(back).toEqual({ ...d, seq: 7 });
    expect(Object.keys(back.reactions)).toEqual(['__proto__', '👍']);
    expect(Object.getOwnPropertyDescriptor(back.reactions, '__proto__')?.value).toEqual(['u1']);
    expect(JSON.stringify(back.metadata)).toBe(JSON.stringify(d.metadata));
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('keeps optional fields, versions and unknown extra fields', () => {
    const d = {
      ...tricky(),
      editedAt: '2024-01-02T03:04:06.000Z',
      editedBy: 'ed',
      deleted: true,
      deletedBy: 'mod',
      deletedAt: '2024-01-02T03:04:07.000Z',
      versions: [{ content: 'old', editedBy: 'u', editedAt: 't' }],
      threadId: 'future-field',
    } as MessageDraft;
    expect(decodeMessageRecord(encodeMessageRecord(3, d))).toEqual({ ...d, seq: 3 });
  });

  it('keeps the thread fields, and decodes records written before threads (12 fields)', () => {
    const d = {
      ...tricky(),
      replyTo: 'p',
      threadId: 't',
      replyCount: 3,
      lastReplyAt: '2024-01-02T03:04:08.000Z',
    } as MessageDraft;
    expect(decodeMessageRecord(encodeMessageRecord(4, d))).toEqual({ ...d, seq: 4 });
    const plain = tricky();
    const legacy = encodeMessageRecord(5, plain).split(FIELD_SEP).slice(0, 12).join(FIELD_SEP);
    expect(decodeMessageRecord(legacy)).toEqual({ ...plain, seq: 5 });
  });

  it('omits optional fields that the draft does not have', () => {
    const back = decodeMessageRecord(encodeMessageRecord(1, tricky()));
    for (const k of ['editedAt', 'editedBy', 'deleted', 'deletedBy', 'deletedAt', 'versions']) {
      expect(Object.prototype.hasOwnProperty.call(back, k)).toBe(false);
    }
  });

  it('timestampMs parses ISO timestamps and never treats garbage as old', () => {
    expect(timestampMs('2024-01-02T03:04:05.678Z')).toBe(Date.parse('2024-01-02T03:04:05.678Z'));
    expect(timestampMs('not a date')).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('redis-codec: splitMessageEnvelope', () => {
  it('prefix + seq + suffix is encodeMessageEnvelope byte for byte', () => {
    const d = tricky({ editedAt: 'x', editedBy: 'y' });
    const { prefix, suffix } = splitMessageEnvelope(d);
    for (const seq of [1, 9, 10, 42, 123_456_789]) {
      expect(`${prefix}${seq}${suffix}`).toBe(encodeMessageEnvelope({ ...d, seq }));
    }
  });

  it('finds the seq wherever the encoder puts it', () => {
    const seqLast = (m: { seq: number }): string =>
      encodeEnvelope('message', {
        ...messageToWire({ ...tricky(), ...m }),
        seq: undefined,
        n: m.seq,
      });
    const d = tricky();
    const { prefix, suffix } = splitMessageEnvelope(d, (m) => seqLast(m));
    expect(`${prefix}77${suffix}`).toBe(seqLast({ ...d, seq: 77 }));
  });

  it('refuses an encoding where the seq appears twice', () => {
    const twice = (m: { seq: number }): string => JSON.stringify({ a: m.seq, b: m.seq });
    expect(() => splitMessageEnvelope(tricky(), twice)).toThrow('cannot locate seq');
  });
});

describe('redis-codec: rooms, members, restrictions', () => {
  it('rooms round-trip through hash arguments, extra fields included', () => {
    const room = {
      id: 'r',
      name: 'n',
      description: '',
      private: true,
      owner: 'o',
      maxMembers: null,
      createdAt: 'c',
      metadata: { a: [1, { b: null }] },
      extra: 1,
    } as RoomRecord;
    const args = roomToHashArgs(room);
    const hash: Record<string, string> = {};
    for (let i = 0; i < args.length; i += 2) hash[args[i]] = args[i + 1];
    expect(roomFromHash(hash)).toEqual(room);
    expect(roomFromHash(args)).toEqual(room);
    expect(roomFromHash({})).toBeNull();
    expect(roomToHashArgs({ name: 'x', description: undefined })).toEqual(['name', '"x"']);
  });

  it('members keep the role as a leading token', () => {
    const m = { userId: 'u\x1f"', role: 'moderator' as const, joinedAt: 't' };
    const v = encodeMember(m);
    expect(v.startsWith(`moderator${FIELD_SEP}`)).toBe(true);
    expect(decodeMember(v)).toEqual(m);
    expect(decodeMember(`admin${v.slice('moderator'.length)}`)).toEqual({ ...m, role: 'admin' });
  });

  it('restrictions lead with until (empty when permanent)', () => {
    const r: Restriction = { kind: 'mute', userId: 'u', by: 'm', reason: '', at: 't', until: 1700000000000 };
    expect(encodeRestriction(r).startsWith(`1700000000000${FIELD_SEP}`)).toBe(true);
    expect(encodeRestriction({ ...r, until: null }).startsWith(FIELD_SEP)).toBe(true);
    expect(decodeRestriction(encodeRestriction(r))).toEqual(r);
  });
});

describe('redis-keys', () => {
  it('tags every room key with the room and every user key with the user', () => {
    const keys = new RedisKeys('p:');
    for (const k of keys.roomKeyList('r1')) expect(k.startsWith('p:{r:r1}:')).toBe(true);
    expect(keys.userRooms('u1')).toBe('p:{u:u1}:rooms');
    expect(keys.presence('u1')).toBe('p:{u:u1}:presence');
    expect(keys.channel('room:r1')).toBe('p:room:r1');
    expect(keys.topicOf('p:room:r1')).toBe('room:r1');
    expect(keys.topicOf('other')).toBeNull();
  });

  it('shard channels carry the hash tag (so the slot) of their room or user; channel bus topics have their own; node-wide topics none', () => {
    const keys = new RedisKeys('p:');
    // Redis hashes the first {...} of a name (when not empty).
    const tag = (name: string | null): string | undefined => /\{([^}]+)\}/.exec(name ?? '')?.[1];
    expect(keys.shardChannel('room:r1')).toBe('p:{r:r1}:topic');
    expect(tag(keys.shardChannel('room:r1'))).toBe(tag(keys.room('r1').seq));
    expect(tag(keys.shardChannel('room:r1'))).toBe(tag(keys.room('r1').outbox));
    expect(keys.shardChannel('user:u1')).toBe('p:{u:u1}:topic');
    expect(tag(keys.shardChannel('user:u1'))).toBe(tag(keys.presence('u1')));
    expect(keys.shardChannel('chan:orders')).toBe('p:{t:chan:orders}');
    expect(keys.shardChannel('chan:~all')).toBe('p:{t:chan:~all}');
    expect(keys.shardChannel('nodes')).toBeNull();
    expect(keys.shardChannel('rooms:public')).toBeNull();
    expect(keys.roomKeyList('r1')).toContain('p:{r:r1}:outbox');
  });
});

describe('redis-connection: parseRedisUrl', () => {
  it('parses redis:// and rediss:// URLs with credentials and db', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6380')).toEqual({ host: '127.0.0.1', port: 6380, tls: false });
    expect(parseRedisUrl('rediss://us%40er:p%3Ass@cache.example:6390/2')).toEqual({
      host: 'cache.example',
      port: 6390,
      tls: true,
      username: 'us@er',
      password: 'p:ss',
      db: 2,
    });
    expect(parseRedisUrl('redis://:only-password@h')).toEqual({
      host: 'h',
      port: 6379,
      tls: false,
      password: 'only-password',
    });
    expect(parseRedisUrl('redis://[::1]:7000')).toMatchObject({ host: '::1', port: 7000 });
  });

  it('rejects other schemes and bad databases without leaking the password', () => {
    expect(() => parseRedisUrl('http://h:1')).toThrow('redis:// or rediss://');
    expect(() => parseRedisUrl('redis://u:secret@h/x')).toThrow('database number');
    expect(() => parseRedisUrl('redis://u:secret@h/x')).not.toThrow('secret');
    expect(() => parseRedisUrl('not a url')).toThrow('invalid Redis URL');
    expect(redactUrl('redis://u:secret@h:1')).toBe('redis://u:***@h:1');
  });
});
