/**
 * `StreamingWsAdapter` hands the streaming endpoint's sockets straight to the
 * streaming gateway; an app's own `@WebSocketGateway` on another path keeps
 * Nest's usual life cycle (`handleConnection`, `@SubscribeMessage` replies,
 * `handleDisconnect`) next to it, and both serve at once.
 */
import { Module } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  MessageBody,
  OnGatewayConnection,
  OnGatewayDisconnect,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { StreamingModule, StreamingWsAdapter } from '@nest-streaming/streaming';
import WebSocket from 'ws';
import { eventually, signToken, startNestApp, type TestApp } from './support/app';
import { ClientPool } from './support/ws-client';

const SECRET = 'ws-adapter-e2e-secret-9c2e71d4a8-5f03';

@WebSocketGateway({ path: '/echo' })
class EchoGateway implements OnGatewayConnection, OnGatewayDisconnect {
  connected = 0;
  disconnected = 0;

  handleConnection(): void {
    this.connected++;
  }

  handleDisconnect(): void {
    this.disconnected++;
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): { event: string; data: unknown } {
    return { event: 'echoed', data };
  }
}

@Module({
  imports: [StreamingModule.forRoot({ historyStore: 'memory', auth: { jwtSecret: SECRET } })],
  providers: [EchoGateway],
})
class AdapterTestModule {}

const pool = new ClientPool();
let t: TestApp;

beforeAll(async () => {
  t = await startNestApp(AdapterTestModule, {
    configure: (app: NestExpressApplication) => app.useWebSocketAdapter(new StreamingWsAdapter(app)),
  });
});

afterAll(async () => {
  await pool.closeAll();
  await t.close();
});

function openEcho(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/echo`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve) => ws.once('message', (raw: Buffer) => resolve(JSON.parse(raw.toString()))));
}

it("serves the streaming endpoint and an app's own gateway side by side", async () => {
  const token = await signToken(SECRET, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 });
  const alice = await pool.connect(`${t.wsUrl}?token=${token}`);
  expect(alice.connected.data).toMatchObject({ user_id: 'alice', transport: 'ws' });

  const gateway = t.app.get(EchoGateway);
  const echo = await openEcho();
  await eventually(() => expect(gateway.connected).toBe(1));
  const reply = nextMessage(echo);
  echo.send(JSON.stringify({ event: 'echo', data: { hello: 'world' } }));
  expect(await reply).toEqual({ event: 'echoed', data: { hello: 'world' } });

  // The streaming connection still answers requests while the other gateway works.
  expect((await alice.request('ping')).type).toBe('pong');

  echo.close();
  await eventually(() => expect(gateway.disconnected).toBe(1));
  // Streaming connections are not the app gateway's: it saw one connection, not two.
  expect(gateway.connected).toBe(1);
});

it('answers a streaming upgrade without a token with 401 and keeps serving', async () => {
  const status = await new Promise<number>((resolve) => {
    const ws = new WebSocket(t.wsUrl);
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => undefined);
  });
  expect(status).toBe(401);
  const token = await signToken(SECRET, { sub: 'bob', exp: Math.floor(Date.now() / 1000) + 600 });
  const bob = await pool.connect(`${t.wsUrl}?token=${token}`);
  expect(bob.connected.data).toMatchObject({ user_id: 'bob' });
});
