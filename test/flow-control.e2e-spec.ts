/**
 * Flow control end to end (issue 10), over real sockets on the local backend
 * and on a real redis-server: a burst the server itself produces (a busy room,
 * acks of pipelined requests, a replay, a server-side sender) never drops a
 * client that reads; a fast sender is slowed, never refused; a stalled reader
 * is cut with 1013 within `write_timeout` while the others get everything.
 * PROTOCOL.md sections 3, 4 (`resume`), 7 and 8 (`Last-Event-ID`); docs/PROTOCOL.md section 11.
 *
 * Every app raises the rate limits out of the way, so that any `rate_limited`
 * or 1013 seen here comes from flow control.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Module } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';
import {
  StreamingManager,
  StreamingModule,
  StreamingWsAdapter,
  type StreamingModuleOptions,
} from '@nest-streaming/streaming';
import {
  ALL_ROUTES,
  activeConnections,
  metricValue,
  signToken,
  startNestApp,
  type TestApp,
} from './support/app';
import { startRedisServer, type RedisServerHandle } from './support/redis-server';
import { ClientPool, WsClient, type Envelope, type EnvelopePredicate, type Json } from './support/ws-client';

jest.setTimeout(60_000);

const SECRET = 'flow-control-e2e-secret-5f2a90-c6e1';

/** Rate limits out of the way (and room for the many-rooms publisher). */
const NO_LIMITS: StreamingModuleOptions = {
  rateLimit: { requestsPerSecond: 100_000, burstSize: 100_000 },
  maxMessagesPerSecond: 100_000,
  maxRoomsPerUser: 1000,
  maxRoomsOwnedPerUser: 1000,
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let counter = 0;
/** A user name no other test uses. */
const user = (prefix: string): string => `${prefix}-${++counter}`;

const roomMessage =
  (roomId: string): EnvelopePredicate =>
  (e) =>
    e.type === 'message' && e.data?.room_id === roomId;
const anyMessage: EnvelopePredicate = (e) => e.type === 'message';

const describeClose = (c: { closeInfo?: { code: number; reason: string } }): string | false =>
  c.closeInfo ? `${c.closeInfo.code} ${c.closeInfo.reason}` : false;

/** `n` consecutive integers from `from`. */
const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

/** True when `seqs` is `from, from+1, ...` (a prefix is fine: missing ones are counted elsewhere). */
const consecutiveFrom = (seqs: number[], from: number): boolean => seqs.every((s, i) => s === from + i);

/**
 * Poll until `done` holds for every client or it closed, until nothing arrived on
 * any of them for `idleMs` (delivery stalled: no use waiting), or until the deadline.
 * Never throws: the assertions after it say what went wrong.
 */
async function until(
  clients: WsClient[],
  done: (c: WsClient) => boolean,
  timeoutMs: number,
  idleMs = 3000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  let changedAt = Date.now();
  while (Date.now() < deadline) {
    if (clients.every((c) => c.closeInfo !== undefined || done(c))) return;
    const n = clients.reduce((sum, c) => sum + c.envelopes.length, 0);
    if (n !== seen) {
      seen = n;
      changedAt = Date.now();
    } else if (Date.now() - changedAt > idleMs) return;
    await sleep(25);
  }
}

/** What every member of a room saw: who was closed, how many of the room's messages arrived, in seq order or not. */
interface DeliverySummary {
  members: number;
  /** `"<code> <reason>": count` of the clients that were closed. */
  closed: Record<string, number>;
  received: { min: number; max: number; total: number };
  /** Clients whose room messages are not `firstSeq, firstSeq+1, ...` (gaps, duplicates, disorder). */
  notInSeqOrder: number;
}

function deliveries(receivers: Array<[WsClient, string]>, firstSeq = 1): DeliverySummary {
  const closed: Record<string, number> = {};
  const counts: number[] = [];
  let notInSeqOrder = 0;
  for (const [c, roomId] of receivers) {
    const why = describeClose(c);
    if (why) closed[why] = (closed[why] ?? 0) + 1;
    const seqs = c.all(roomMessage(roomId)).map((e) => Number(e.data.seq));
    counts.push(seqs.length);
    if (!consecutiveFrom(seqs, firstSeq)) notInSeqOrder++;
  }
  return {
    members: receivers.length,
    closed,
    received: {
      min: Math.min(...counts),
      max: Math.max(...counts),
      total: counts.reduce((a, b) => a + b, 0),
    },
    notInSeqOrder,
  };
}

/** Every one of `members` receivers open, with exactly `n` messages in seq order. */
const everyoneGot = (members: number, n: number): DeliverySummary => ({
  members,
  closed: {},
  received: { min: n, max: n, total: members * n },
  notInSeqOrder: 0,
});

/** How the requests with these ids were answered (over one or several clients). */
interface AnswerSummary {
  requests: number;
  acks: number;
  /** `"<code>: <message>": count`. */
  errors: Record<string, number>;
  unanswered: number;
  answeredTwice: number;
}

function answers(clients: WsClient | WsClient[], ids: string[]): AnswerSummary {
  const wanted = new Set(ids);
  const byId = new Map<string, Envelope[]>();
  for (const c of Array.isArray(clients) ? clients : [clients]) {
    for (const e of c.envelopes) {
      if (e.id === undefined || !wanted.has(e.id)) continue;
      const list = byId.get(e.id) ?? [];
      list.push(e);
      byId.set(e.id, list);
    }
  }
  const errors: Record<string, number> = {};
  let acks = 0;
  let answeredTwice = 0;
  for (const list of byId.values()) {
    if (list.length > 1) answeredTwice++;
    for (const e of list) {
      if (e.type === 'ack') acks++;
      else {
        const key = `${String(e.data?.code ?? e.type)}: ${String(e.data?.message ?? '')}`;
        errors[key] = (errors[key] ?? 0) + 1;
      }
    }
  }
  return { requests: ids.length, acks, errors, unanswered: ids.length - byId.size, answeredTwice };
}

const allAcked = (n: number): AnswerSummary => ({
  requests: n,
  acks: n,
  errors: {},
  unanswered: 0,
  answeredTwice: 0,
});

/** Number of envelopes of `c` answering one of `ids`. */
const answeredCount = (c: WsClient, ids: Set<string>): number =>
  c.envelopes.reduce((n, e) => (e.id !== undefined && ids.has(e.id) ? n + 1 : n), 0);

const sendMessageFrame = (id: string, roomId: string, content: string): string =>
  JSON.stringify({ type: 'send_message', id, data: { room_id: roomId, content } });

// ---------------------------------------------------------------------------------------------
// SSE read from the raw HTTP stream
// ---------------------------------------------------------------------------------------------

interface SseEvent {
  type: string;
  id?: string;
  data: Json;
}

/** A `GET /sse` stream read with node:http: every event in order, and whether the server ended it. */
class SseReader {
  readonly events: SseEvent[] = [];
  status = 0;
  ended = false;
  private buf = '';

  private constructor(private readonly req: ClientRequest) {}

  static open(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(new URL(path, baseUrl), {
        headers: { Accept: 'text/event-stream', ...headers },
        agent: false,
      });
      const reader = new SseReader(req);
      req.on('response', (res) => {
        reader.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => reader.push(chunk));
        res.on('end', () => (reader.ended = true));
        res.on('close', () => (reader.ended = true));
        res.on('error', () => (reader.ended = true));
        resolve(reader);
      });
      req.on('error', (err) => {
        reader.ended = true;
        reject(err);
      });
      req.end();
    });
  }

  all(type: string): SseEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  close(): void {
    this.req.destroy();
  }

  private push(chunk: string): void {
    this.buf += chunk;
    for (let i = this.buf.indexOf('\n\n'); i >= 0; i = this.buf.indexOf('\n\n')) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      let type = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) this.events.push({ type, id, data: JSON.parse(data.join('\n')) });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Kernel buffering of a paused loopback reader
// ---------------------------------------------------------------------------------------------

/**
 * Bytes the kernel holds for a WebSocket reader that stopped reading (its receive
 * buffer plus the sender's send buffer), measured on a bare `ws` pair on loopback
 * with 4 KB messages at a steady rate, as the paused-reader test writes them.
 */
async function kernelBufferBytes(messageBytes: number): Promise<number> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const { port } = wss.address() as AddressInfo;
  const serverSide = new Promise<WebSocket>((r) => wss.once('connection', r));
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  client.on('error', () => undefined);
  await new Promise<void>((r) => client.once('open', () => r()));
  client.pause();
  const s = await serverSide;
  const pad = 'k'.repeat(messageBytes);
  let written = 0;
  const deadline = Date.now() + 10_000;
  // Until ws itself buffers (the kernel refused more) and keeps doing so for a while.
  let stableSince = 0;
  while (Date.now() < deadline) {
    for (let i = 0; i < 20; i++) {
      s.send(pad);
      written += messageBytes + 4;
    }
    await sleep(5);
    if (s.bufferedAmount > 256 * 1024) {
      stableSince ||= Date.now();
      if (Date.now() - stableSince > 300) break;
    }
  }
  const inKernel = written - s.bufferedAmount;
  client.terminate();
  s.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
  return inKernel;
}

// ---------------------------------------------------------------------------------------------
// The suites: one per backend
// ---------------------------------------------------------------------------------------------

type BackendKind = 'local' | 'redis';

describe.each<BackendKind>(['local', 'redis'])('flow control on the %s backend', (kind) => {
  let redis: RedisServerHandle | undefined;
  const pool = new ClientPool();
  const apps: TestApp[] = [];
  const sse: SseReader[] = [];

  beforeAll(async () => {
    if (kind === 'redis') redis = await startRedisServer();
  });

  afterEach(async () => {
    for (const s of sse.splice(0)) s.close();
    // Every frame any client received was a well-formed envelope.
    expect(await pool.closeAll()).toEqual([]);
    await Promise.all(apps.splice(0).map((a) => a.close()));
    if (redis) {
      const r = new Redis({ port: redis.port, host: '127.0.0.1' });
      await r.flushall();
      r.disconnect();
    }
  });

  afterAll(async () => {
    await redis?.dispose();
  });

  /** An app of StreamingModule.forRoot on this backend, limits raised, closed after the test. */
  async function start(options: Record<string, unknown> = {}): Promise<TestApp> {
    const backend: StreamingModuleOptions =
      kind === 'redis' ? { backend: 'redis', backendUrls: [redis!.url] } : { backend: 'local' };
    const config = {
      historyStore: 'memory',
      auth: { jwtSecret: SECRET },
      ...NO_LIMITS,
      ...backend,
      ...options,
    } as StreamingModuleOptions;
    @Module({ imports: [StreamingModule.forRoot({ ...config, routes: ALL_ROUTES })] })
    class FlowControlTestModule {}
    const t = await startNestApp(FlowControlTestModule, {
      configure: (app: NestExpressApplication) => app.useWebSocketAdapter(new StreamingWsAdapter(app)),
    });
    apps.push(t);
    return t;
  }

  const token = (sub: string): Promise<string> =>
    signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

  async function connectAs(t: TestApp, sub: string): Promise<WsClient> {
    return pool.connect(t.wsUrl, { token: await token(sub), timeoutMs: 10_000 });
  }

  /** `n` connections of distinct users (opened 50 at a time). */
  async function connectMany(t: TestApp, prefix: string, n: number): Promise<WsClient[]> {
    const out: WsClient[] = [];
    for (let i = 0; i < n; i += 50) {
      const batch = range(i, Math.min(50, n - i));
      out.push(...(await Promise.all(batch.map(() => connectAs(t, user(prefix))))));
    }
    return out;
  }

  /** `owner` creates a room, every other client joins; resolves once the owner saw every join. */
  async function roomWith(owner: WsClient, ...others: WsClient[]): Promise<string> {
    const roomId = String((await owner.ok('create_room', { name: 'flow' })).room.id);
    for (const c of others) await c.ok('join_room', { room_id: roomId }, 10_000);
    for (const c of others) {
      const uid = String(c.connected.data.user_id);
      await owner.waitFor(
        (e) => e.type === 'user_joined' && e.data.room_id === roomId && e.data.user_id === uid,
        10_000,
      );
    }
    return roomId;
  }

  async function drops(t: TestApp): Promise<number> {
    const res = await t.http('GET', '/metrics');
    return metricValue(res.text, 'streaming_send_queue_drops_total');
  }

  // -------------------------------------------------------------------------------------------
  // 1. A busy room
  // -------------------------------------------------------------------------------------------

  it('a busy room: 20 members each pipeline 100 send_message; every member gets all 2000 in seq order, every request one ack, nobody is closed', async () => {
    const t = await start();
    const members = await connectMany(t, 'busy', 20);
    const roomId = await roomWith(members[0], ...members.slice(1));

    const idsOf = members.map((_, m) => range(0, 100).map((i) => `busy-${m}-${i}`));
    // All at once: every member writes its 100 frames without waiting for any answer.
    members.forEach((c, m) => idsOf[m].forEach((id) => c.sendRaw(sendMessageFrame(id, roomId, id))));

    const idSets = idsOf.map((ids) => new Set(ids));
    await until(
      members,
      (c) => c.all(roomMessage(roomId)).length >= 2000 && answeredCount(c, idSets[members.indexOf(c)]) >= 100,
      20_000,
    );
    expect(deliveries(members.map((c) => [c, roomId]))).toEqual(everyoneGot(20, 2000));
    expect(answers(members, idsOf.flat())).toEqual(allAcked(2000));
    // Each member's acks came on its own connection.
    expect(members.map((c, m) => answers(c, idsOf[m]).acks)).toEqual(members.map(() => 100));
  });

  // -------------------------------------------------------------------------------------------
  // 2. A fast publisher
  // -------------------------------------------------------------------------------------------

  it.each([
    ['one frame per request', 1],
    ['NDJSON frames of 100 requests', 100],
  ])(
    'a fast publisher pipelining 2000 send_message (%s) gets 2000 acks and no error, stays open; a member gets all 2000',
    async (_how, perFrame) => {
      const t = await start();
      const [publisher, reader] = await connectMany(t, 'pipeline', 2);
      const roomId = await roomWith(publisher, reader);

      const ids = range(0, 2000).map((i) => `pipe-${i}`);
      for (let i = 0; i < ids.length; i += perFrame) {
        publisher.sendRaw(
          ids
            .slice(i, i + perFrame)
            .map((id) => sendMessageFrame(id, roomId, id))
            .join('\n'),
        );
      }

      const idSet = new Set(ids);
      await until(
        [publisher, reader],
        (c) =>
          c.all(roomMessage(roomId)).length >= 2000 && (c !== publisher || answeredCount(c, idSet) >= 2000),
        20_000,
      );
      expect({ closed: describeClose(publisher), answers: answers(publisher, ids) }).toEqual({
        closed: false,
        answers: allAcked(2000),
      });
      expect(deliveries([[reader, roomId]])).toEqual(everyoneGot(1, 2000));
      expect(deliveries([[publisher, roomId]])).toEqual(everyoneGot(1, 2000));
    },
  );

  // -------------------------------------------------------------------------------------------
  // 3. A long absence
  // -------------------------------------------------------------------------------------------

  const MISSED = 800;

  /**
   * A member of rooms A and B who saw their first 3 messages each, then went
   * offline while each room received {@link MISSED} more (server-side, nobody connected).
   */
  async function longAbsence(t: TestApp): Promise<{ away: string; rooms: Record<string, number> }> {
    const manager = t.app.get(StreamingManager);
    const owner = await connectAs(t, user('owner'));
    const awayUser = user('away');
    const away = await connectAs(t, awayUser);
    const roomA = await roomWith(owner, away);
    const roomB = await roomWith(owner, away);
    for (const roomId of [roomA, roomB]) {
      for (let i = 0; i < 3; i++) await owner.ok('send_message', { room_id: roomId, content: `seen ${i}` });
    }
    const seen = async (roomId: string): Promise<number> =>
      Math.max(...(await away.waitForCount(roomMessage(roomId), 3)).map((e) => Number(e.data.seq)));
    const rooms = { [roomA]: await seen(roomA), [roomB]: await seen(roomB) };
    await away.close();
    await owner.close();
    for (let i = 0; i < MISSED; i++) {
      await manager.saveMessage(roomA, 'bot', `missed A ${i}`);
      await manager.saveMessage(roomB, 'bot', `missed B ${i}`);
    }
    return { away: awayUser, rooms };
  }

  it(`a long absence: resume after ${MISSED} missed messages in each of two rooms replays all ${2 * MISSED} in seq order, then resumed, then the ack; the connection stays open`, async () => {
    const t = await start();
    const { away, rooms } = await longAbsence(t);
    const [roomA, roomB] = Object.keys(rooms);

    const c = await connectAs(t, away);
    const from = c.envelopes.length;
    c.send({ type: 'resume', id: 'resume-1', data: { rooms } });
    await until([c], (x) => x.envelopes.some((e) => e.id === 'resume-1'), 20_000);

    const got = c.envelopes.slice(from);
    const seqsIn = (roomId: string): number[] =>
      got.filter(roomMessage(roomId)).map((e) => Number(e.data.seq));
    const lastMessage = got.map((e) => e.type).lastIndexOf('message');
    const resumedAt = got.findIndex((e) => e.type === 'resumed');
    const answerAt = got.findIndex((e) => e.id === 'resume-1');
    expect({
      closed: describeClose(c),
      replayedA: seqsIn(roomA).length,
      replayedB: seqsIn(roomB).length,
      inSeqOrderA: consecutiveFrom(seqsIn(roomA), rooms[roomA] + 1),
      inSeqOrderB: consecutiveFrom(seqsIn(roomB), rooms[roomB] + 1),
      resumedAfterReplay: resumedAt > lastMessage,
      answer: got[answerAt]?.type ?? 'none',
      ackAfterResumed: answerAt > resumedAt && resumedAt >= 0,
    }).toEqual({
      closed: false,
      replayedA: MISSED,
      replayedB: MISSED,
      inSeqOrderA: true,
      inSeqOrderB: true,
      resumedAfterReplay: true,
      answer: 'ack',
      ackAfterResumed: true,
    });
    expect(got[resumedAt].data.rooms).toEqual({
      [roomA]: rooms[roomA] + MISSED,
      [roomB]: rooms[roomB] + MISSED,
    });
    expect((await c.request('ping')).type).toBe('pong');
    expect(c.isOpen).toBe(true);
  });

  it(`a long absence over SSE: Last-Event-ID replays all ${2 * MISSED} missed messages in seq order, then resumed; the stream stays open and live`, async () => {
    const t = await start();
    const { away, rooms } = await longAbsence(t);
    const [roomA, roomB] = Object.keys(rooms);

    const stream = await SseReader.open(t.baseUrl, `/sse?token=${encodeURIComponent(await token(away))}`, {
      'Last-Event-ID': `${roomA}:${rooms[roomA]},${roomB}:${rooms[roomB]}`,
    });
    sse.push(stream);
    expect(stream.status).toBe(200);
    const deadline = Date.now() + 20_000;
    while (!stream.ended && stream.all('resumed').length === 0 && Date.now() < deadline) await sleep(25);

    const seqsIn = (roomId: string): number[] =>
      stream
        .all('message')
        .filter((e) => e.data.room_id === roomId)
        .map((e) => Number(e.data.seq));
    const types = stream.events.map((e) => e.type);
    expect({
      ended: stream.ended,
      replayedA: seqsIn(roomA).length,
      replayedB: seqsIn(roomB).length,
      inSeqOrderA: consecutiveFrom(seqsIn(roomA), rooms[roomA] + 1),
      inSeqOrderB: consecutiveFrom(seqsIn(roomB), rooms[roomB] + 1),
      resumedAfterReplay: types.indexOf('resumed') > types.lastIndexOf('message'),
    }).toEqual({
      ended: false,
      replayedA: MISSED,
      replayedB: MISSED,
      inSeqOrderA: true,
      inSeqOrderB: true,
      resumedAfterReplay: true,
    });
    // Message ids are the room cursors a later reconnect sends back.
    expect(stream.all('message').at(-1)?.id).toMatch(/^[^:]+:\d+$/);

    // Still open and live: a new message arrives after the replay.
    await t.app.get(StreamingManager).saveMessage(roomA, 'bot', 'live after the replay');
    const liveDeadline = Date.now() + 5000;
    while (!stream.ended && seqsIn(roomA).length <= MISSED && Date.now() < liveDeadline) await sleep(25);
    expect({ ended: stream.ended, lastSeqA: seqsIn(roomA).at(-1) }).toEqual({
      ended: false,
      lastSeqA: rooms[roomA] + MISSED + 1,
    });
  });

  // -------------------------------------------------------------------------------------------
  // 4. Many rooms
  // -------------------------------------------------------------------------------------------

  it('many rooms: a publisher in 200 rooms of 5 members sends 4000 messages round robin at 4000/s; every delivery arrives, the publisher stays open', async () => {
    const ROOMS = 200;
    const PER_ROOM = 5;
    const TOTAL = 4000;
    const RATE = 4000;
    const t = await start();
    const publisher = await connectAs(t, user('publisher'));
    const rooms: string[] = [];
    for (let i = 0; i < ROOMS; i++) {
      rooms.push(String((await publisher.ok('create_room', { name: `room ${i}` }, 10_000)).room.id));
    }
    const members = await connectMany(t, 'reader', ROOMS * PER_ROOM);
    const roomOf = (i: number): string => rooms[i % ROOMS];
    for (let i = 0; i < members.length; i += 100) {
      await Promise.all(
        members.slice(i, i + 100).map((c, j) => c.ok('join_room', { room_id: roomOf(i + j) }, 15_000)),
      );
    }

    // Round robin at a fixed rate, whatever the answers.
    const ids = range(0, TOTAL).map((i) => `rr-${i}`);
    const started = Date.now();
    let sent = 0;
    while (sent < TOTAL) {
      const due = Math.min(TOTAL, Math.floor(((Date.now() - started) * RATE) / 1000) + 1);
      for (; sent < due; sent++) publisher.sendRaw(sendMessageFrame(ids[sent], roomOf(sent), ids[sent]));
      await sleep(2);
    }

    const perRoom = TOTAL / ROOMS;
    const idSet = new Set(ids);
    await until(
      [publisher, ...members],
      (c) =>
        c === publisher
          ? c.all(anyMessage).length >= TOTAL && answeredCount(c, idSet) >= TOTAL
          : c.all(anyMessage).length >= perRoom,
      30_000,
    );
    expect({
      publisher: describeClose(publisher),
      publisherGot: publisher.all(anyMessage).length,
      answers: answers(publisher, ids),
    }).toEqual({ publisher: false, publisherGot: TOTAL, answers: allAcked(TOTAL) });
    expect(deliveries(members.map((c, i) => [c, roomOf(i)]))).toEqual(everyoneGot(ROOMS * PER_ROOM, perRoom));
    // The publisher, a member of every room, got each room's messages in seq order.
    expect(deliveries(rooms.map((r) => [publisher, r]))).toEqual(everyoneGot(ROOMS, perRoom));
  });

  // -------------------------------------------------------------------------------------------
  // 5. A paused reader
  // -------------------------------------------------------------------------------------------

  it('a paused reader among 10 members is closed with 1013 within write_timeout once the kernel buffers are full, while the others get every message', async () => {
    const WRITE_TIMEOUT_S = 2;
    const SIZE = 4096;
    const kernel = await kernelBufferBytes(SIZE);
    const t = await start({ writeTimeout: WRITE_TIMEOUT_S, sendQueueBytes: 256 * 1024 });
    const members = await connectMany(t, 'steady', 10);
    const [sender, paused] = members;
    const roomId = await roomWith(sender, ...members.slice(1));

    const pad = 'x'.repeat(SIZE);
    const ids: string[] = [];
    const send = (): void => {
      const id = `steady-${ids.length}`;
      ids.push(id);
      sender.sendRaw(sendMessageFrame(id, roomId, `${id}|${pad}`));
    };
    let droppedAt = 0;
    /** `n` messages at `perSecond`; with `untilDropped`, stops once the paused member was dropped. */
    const steady = async (n: number, perSecond: number, untilDropped: boolean): Promise<void> => {
      const begin = Date.now();
      for (let i = 0; i < n && !(untilDropped && droppedAt);) {
        const due = Math.min(n, Math.floor(((Date.now() - begin) * perSecond) / 1000) + 1);
        for (; i < due; i++) send();
        await sleep(5);
      }
    };

    // The member stops reading: its TCP socket is paused, the kernel buffers fill up.
    paused.socket.pause();
    const pausedAt = Date.now();
    let bound = pausedAt + 15_000;
    const watch = (async (): Promise<void> => {
      while (!droppedAt && Date.now() <= bound) {
        if ((await drops(t)) > 0 || (await activeConnections(t)) < members.length) droppedAt = Date.now();
        else await sleep(100);
      }
    })();

    // Fill the kernel buffers towards the paused member, and 512 KB more (over a 256 KB
    // budget, under 1 MB): from then on its socket takes nothing.
    const filling = Math.ceil((kernel + 512 * 1024) / SIZE);
    await steady(filling, 500, false);
    const filledAt = Date.now();
    // Then a trickle: a stalled reader is cut within write_timeout (plus slack), not once
    // megabytes more piled up for it.
    bound = Math.min(bound, filledAt + WRITE_TIMEOUT_S * 1000 + 4000);
    await steady(Math.ceil(((bound - Date.now()) / 1000) * 100), 100, true);
    await watch;

    const timing = {
      kernelBufferBytes: kernel,
      sentWhileFilling: filling,
      fillingMs: filledAt - pausedAt,
      boundAfterPauseMs: bound - pausedAt,
      droppedAfterPauseMs: droppedAt ? droppedAt - pausedAt : 'not dropped',
      sentInAll: ids.length,
    };
    expect({ droppedInTime: droppedAt > 0 && droppedAt <= bound, ...timing }).toEqual({
      droppedInTime: true,
      ...timing,
    });

    // Reading again, it finds the close frame: 1013.
    paused.socket.resume();
    expect(await paused.waitForClose(5000)).toEqual({ code: 1013, reason: expect.any(String) });

    // The others go on: a few more messages, then every member got every one in order; every request acked.
    await steady(20, 200, false);
    const others = members.filter((c) => c !== paused);
    const idSet = new Set(ids);
    await until(
      others,
      (c) =>
        c.all(roomMessage(roomId)).length >= ids.length &&
        (c !== sender || answeredCount(c, idSet) >= ids.length),
      20_000,
    );
    expect(deliveries(others.map((c) => [c, roomId]))).toEqual(everyoneGot(others.length, ids.length));
    expect(answers(sender, ids)).toEqual(allAcked(ids.length));
  });

  // -------------------------------------------------------------------------------------------
  // 6. A server-side sender
  // -------------------------------------------------------------------------------------------

  it('a server-side sender: StreamingManager.saveMessage 5000 times in a tight loop reaches all 10 members, none is closed', async () => {
    const t = await start();
    const members = await connectMany(t, 'bot-reader', 10);
    const roomId = await roomWith(members[0], ...members.slice(1));
    const manager = t.app.get(StreamingManager);

    for (let i = 0; i < 5000; i++) await manager.saveMessage(roomId, 'bot', `bot says ${i}`);

    await until(members, (c) => c.all(roomMessage(roomId)).length >= 5000, 20_000);
    expect(deliveries(members.map((c) => [c, roomId]))).toEqual(everyoneGot(10, 5000));
  });
});
