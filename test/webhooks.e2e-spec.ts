/**
 * Webhooks: connect, room_message, disconnect and presence events of a real
 * in-process Nest app are POSTed to a real node:http receiver on 127.0.0.1,
 * signed (HMAC-SHA256 over "<timestamp>.<body>", recomputed here with
 * node:crypto), with an idempotency id that stays the same across retries,
 * retried after growing waits when the receiver fails, dropped (and counted)
 * past a tiny queue, and never in the way of delivery to sockets.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Global, Module } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  StreamingMetricsService,
  StreamingModule,
  StreamingWsAdapter,
  WebhookService,
  verifyWebhookSignature,
  type StreamingModuleOptions,
} from '@nest-streaming/streaming';
import { WEBHOOK_TUNING } from '../libs/streaming/src/webhooks/webhook.service';
import type { WebhookTuning } from '../libs/streaming/src/webhooks/webhook-dispatcher';
import { eventually, metricValue, signToken, startNestApp, type TestApp } from './support/app';
import { ClientPool, WsClient, isMessage } from './support/ws-client';

jest.setTimeout(30_000);

const JWT_SECRET = 'webhooks-e2e-jwt-secret-3b7e9d1c5a-f0c2';
const WEBHOOK_SECRET = 'whsec-e2e-5d1f0a9c7b3e2d4f';
/** Backoff of these tests: 200 ms, 400 ms, 800 ms ... nominal, each shortened by up to half. */
const BASE_MS = 200;

/** One request as the receiver got it. */
interface Received {
  at: number;
  headers: IncomingMessage['headers'];
  raw: Buffer;
  /** The id header. */
  id: string;
  /** 1 for the first try of this id, 2 for the next ... */
  tryNo: number;
  /** What the receiver answered (0: it never answered). */
  status: number;
}

/** What the receiver does with the n-th try of a delivery: answer a status, or never answer. */
type Behavior = (tryNo: number) => number | 'hang';

interface Receiver {
  url: string;
  requests: Received[];
  /** Requests still waiting for an answer. */
  open(): number;
  close(): Promise<void>;
}

async function startReceiver(behavior: Behavior): Promise<Receiver> {
  const requests: Received[] = [];
  const tries = new Map<string, number>();
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const id = String(req.headers['x-streaming-webhook-id'] ?? '');
      const tryNo = (tries.get(id) ?? 0) + 1;
      tries.set(id, tryNo);
      const action = behavior(tryNo);
      const entry: Received = {
        at: Date.now(),
        headers: req.headers,
        raw: Buffer.concat(chunks),
        id,
        tryNo,
        status: action === 'hang' ? 0 : action,
      };
      requests.push(entry);
      if (action === 'hang') {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      res.writeHead(action, { 'Content-Type': 'text/plain' }).end(action < 300 ? 'ok' : 'try again');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/streaming`,
    requests,
    open: () => hanging.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The documented signature, recomputed independently of the library. */
function signatureOk(r: Received): boolean {
  const ts = r.headers['x-streaming-timestamp'];
  const sig = r.headers['x-streaming-signature'];
  if (typeof ts !== 'string' || typeof sig !== 'string' || !sig.startsWith('v1=')) return false;
  const expected = createHmac('sha256', WEBHOOK_SECRET)
    .update(Buffer.concat([Buffer.from(`${ts}.`), r.raw]))
    .digest();
  const given = Buffer.from(sig.slice(3), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const bodyOf = (r: Received): any => JSON.parse(r.raw.toString('utf8'));

const pool = new ClientPool();
const apps: TestApp[] = [];
const receivers: Receiver[] = [];

afterEach(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await Promise.all(apps.splice(0).map((a) => a.close()));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function receiver(behavior: Behavior): Promise<Receiver> {
  const r = await startReceiver(behavior);
  receivers.push(r);
  return r;
}

/** An app whose webhooks go to `url`, with this test's short backoff. */
async function startApp(url: string, options: Partial<StreamingModuleOptions> = {}): Promise<TestApp> {
  const tuning: Partial<WebhookTuning> = { backoffBaseMs: BASE_MS, backoffMaxMs: 2000 };
  @Global()
  @Module({ providers: [{ provide: WEBHOOK_TUNING, useValue: tuning }], exports: [WEBHOOK_TUNING] })
  class WebhookTuningModule {}
  @Module({
    imports: [
      WebhookTuningModule,
      StreamingModule.forRoot({
        historyStore: 'memory',
        auth: { jwtSecret: JWT_SECRET },
        nodeId: 'webhook-node',
        webhookUrls: [url],
        webhookSecret: WEBHOOK_SECRET,
        routes: { metrics: true },
        ...options,
      }),
    ],
  })
  class WebhooksModule {}
  const app = await startNestApp(WebhooksModule, {
    configure: (a: NestExpressApplication) => a.useWebSocketAdapter(new StreamingWsAdapter(a)),
  });
  apps.push(app);
  return app;
}

let n = 0;
const connect = async (app: TestApp, name: string): Promise<WsClient> =>
  pool.connect(app.wsUrl, {
    token: await signToken(JWT_SECRET, { sub: `${name}-${++n}`, exp: Math.floor(Date.now() / 1000) + 600 }),
  });

async function room(owner: WsClient): Promise<string> {
  return ((await owner.ok('create_room', { name: `webhooks ${++n}` })) as { room: { id: string } }).room.id;
}

const metrics = async (app: TestApp): Promise<string> => {
  const res = await app.http('GET', '/metrics');
  expect(res.status).toBe(200);
  return res.text;
};

describe('webhooks', () => {
  it('delivers every event at least once, signed, same id on every retry, after growing waits', async () => {
    const rx = await receiver((tryNo) => (tryNo <= 2 ? 500 : 200));
    const app = await startApp(rx.url, { webhookMaxAttempts: 5, webhookTimeout: 5 });
    const alice = await connect(app, 'alice');
    const aliceId = alice.connected.data.user_id as string;
    const connectionId = alice.connected.data.connection_id as string;
    const roomId = await room(alice);
    const sent: string[] = [];
    for (const content of ['one', 'two', 'three']) {
      sent.push(
        ((await alice.ok('send_message', { room_id: roomId, content })) as { message_id: string }).message_id,
      );
    }
    await alice.close();

    const delivered = (pred: (b: ReturnType<typeof bodyOf>) => boolean): Received[] =>
      rx.requests.filter((r) => r.status === 200 && pred(bodyOf(r)));
    await eventually(
      () => {
        expect(delivered((b) => b.type === 'connect' && b.data.connection_id === connectionId)).toHaveLength(
          1,
        );
        expect(
          delivered((b) => b.type === 'disconnect' && b.data.connection_id === connectionId),
        ).toHaveLength(1);
        for (const id of sent)
          expect(delivered((b) => b.type === 'room_message' && b.data.id === id)).toHaveLength(1);
        expect(delivered((b) => b.type === 'presence' && b.data.user_id === aliceId).length).toBeGreaterThan(
          0,
        );
      },
      15_000,
      50,
    );

    // Every try, signed over "<timestamp>.<raw body>" (recomputed here, and with the exported helper).
    expect(rx.requests.length).toBeGreaterThanOrEqual(3 * 6);
    for (const r of rx.requests) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(signatureOk(r)).toBe(true);
      expect(
        verifyWebhookSignature(
          WEBHOOK_SECRET,
          r.headers['x-streaming-timestamp'],
          r.raw,
          r.headers['x-streaming-signature'],
        ),
      ).toBe(true);
      expect(
        verifyWebhookSignature(
          'not-the-secret-0000',
          r.headers['x-streaming-timestamp'],
          r.raw,
          r.headers['x-streaming-signature'],
        ),
      ).toBe(false);
      const body = bodyOf(r);
      expect(Object.keys(body).sort()).toEqual(['data', 'id', 'node_id', 'timestamp', 'type']);
      expect(body.id).toBe(r.id);
      expect(body.node_id).toBe('webhook-node');
    }

    // The wire shapes.
    const connectBody = bodyOf(
      delivered((b) => b.type === 'connect' && b.data.connection_id === connectionId)[0],
    );
    expect(connectBody.data).toEqual({
      connection_id: connectionId,
      user_id: aliceId,
      session_id: alice.connected.data.session_id,
      transport: 'ws',
    });
    const first = bodyOf(delivered((b) => b.type === 'room_message' && b.data.id === sent[0])[0]);
    expect(first.data).toMatchObject({
      id: sent[0],
      room_id: roomId,
      user_id: aliceId,
      content: 'one',
      seq: 1,
    });

    // Per delivery: tries 1, 2 (answered 500) then 3 (200), same id and same bytes, growing waits.
    const byId = new Map<string, Received[]>();
    for (const r of rx.requests) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
    const finished = [...byId.values()].filter((rs) => rs.some((r) => r.status === 200));
    expect(finished.length).toBeGreaterThanOrEqual(6);
    for (const rs of finished) {
      expect(rs.map((r) => [r.tryNo, r.status])).toEqual([
        [1, 500],
        [2, 500],
        [3, 200],
      ]);
      expect(rs[1].raw.equals(rs[0].raw) && rs[2].raw.equals(rs[0].raw)).toBe(true);
      // Waits are in [nominal / 2, nominal]: at least 100 ms, then at least 200 ms. Lower bounds only
      // (a loaded machine only makes them longer); a little slack for timer rounding.
      expect(rs[1].at - rs[0].at).toBeGreaterThanOrEqual(BASE_MS / 2 - 5);
      expect(rs[2].at - rs[1].at).toBeGreaterThanOrEqual(BASE_MS - 5);
    }

    const text = await metrics(app);
    expect(
      metricValue(text, 'streaming_webhook_deliveries_total', 'result="success"'),
    ).toBeGreaterThanOrEqual(6);
    expect(
      metricValue(text, 'streaming_webhook_attempts_total', 'result="http_error"'),
    ).toBeGreaterThanOrEqual(12);
    expect(metricValue(text, 'streaming_webhook_dropped_total')).toBe(0);
  });

  it('drops new deliveries past a tiny queue when the receiver never answers 2xx, and counts them', async () => {
    const rx = await receiver(() => 503);
    const app = await startApp(rx.url, { webhookQueueSize: 2, webhookMaxAttempts: 8 });
    const service = app.app.get(WebhookService);
    const registry = app.app.get(StreamingMetricsService).registry;
    const alice = await connect(app, 'alice');
    const roomId = await room(alice);
    for (let i = 0; i < 10; i++) await alice.ok('send_message', { room_id: roomId, content: `m${i}` });

    await eventually(async () => {
      expect(
        metricValue(await metrics(app), 'streaming_webhook_dropped_total', 'reason="queue_full"'),
      ).toBeGreaterThanOrEqual(5);
    });
    const text = await metrics(app);
    expect(metricValue(text, 'streaming_webhook_pending')).toBeLessThanOrEqual(2);
    expect(service.pending).toBeLessThanOrEqual(2);
    expect(metricValue(text, 'streaming_webhook_deliveries_total', 'result="success"')).toBe(0);
    await eventually(() => expect(rx.requests.length).toBeGreaterThanOrEqual(2));
    expect(rx.requests.every(signatureOk)).toBe(true);

    // Shutdown does not wait for the retries: what is pending is dropped and counted.
    await alice.close();
    await app.close();
    expect(service.enabled).toBe(false);
    expect(
      metricValue(await registry.metrics(), 'streaming_webhook_dropped_total', 'reason="shutdown"'),
    ).toBeGreaterThan(0);
  });

  it('a receiver that never answers does not slow delivery of room messages to sockets', async () => {
    const rx = await receiver(() => 'hang');
    // No rate limit: 30 quick sends would pass the default burst of 20.
    const app = await startApp(rx.url, { webhookTimeout: 20, rateLimit: { enabled: false } });
    const service = app.app.get(WebhookService);
    const alice = await connect(app, 'alice');
    const bob = await connect(app, 'bob');
    const roomId = await room(alice);
    await bob.ok('join_room', { room_id: roomId });

    await eventually(() => expect(rx.open()).toBeGreaterThan(0));
    const count = 30;
    for (let i = 0; i < count; i++)
      alice.send({ type: 'send_message', id: `s${i}`, data: { room_id: roomId, content: `fast ${i}` } });
    // Each within the helpers' usual 3 s, though no webhook has been answered.
    for (let i = 0; i < count; i++) await bob.waitFor(isMessage(`fast ${i}`));
    await eventually(() =>
      expect(alice.all((e) => e.type === 'ack' && /^s\d+$/.test(e.id ?? ''))).toHaveLength(count),
    );
    expect(rx.requests.every((r) => r.status === 0)).toBe(true);
    expect(service.pending).toBeGreaterThan(0);
    expect(rx.open()).toBeGreaterThan(0);

    // And shutdown does not hang on the open POSTs.
    await pool.closeAll();
    await app.close();
    await eventually(() => expect(rx.open()).toBe(0));
  });
});
