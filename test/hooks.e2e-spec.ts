/**
 * Hooks (issue 14): an app provider allows, refuses or rewrites connect,
 * join, subscribe, publish and send-message requests through decorators, in
 * the documented order (hooks before content filters), with a timeout.
 * Real Nest app, real WebSocket clients, real SSE stream.
 */
import { request as httpRequest } from 'node:http';
import { Injectable, Module } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import {
  BannedWordsFilter,
  BeforeConnect,
  BeforeJoin,
  BeforePublish,
  BeforeSendMessage,
  BeforeSubscribe,
  StreamingError,
  StreamingModule,
  StreamingWsAdapter,
  type ConnectHookContext,
  type JoinHookContext,
  type PublishHookContext,
  type SendMessageHookContext,
  type SubscribeHookContext,
} from '@nest-streaming/streaming';
import { signToken, startNestApp, type TestApp } from './support/app';
import { ClientPool, WsClient } from './support/ws-client';

jest.setTimeout(30_000);

const SECRET = 'hooks-e2e-secret-5e0c1f7a9b3d4e2f8a6c';
const pool = new ClientPool();
let app: TestApp;
const seen: string[] = [];

@Injectable()
class ChatPolicy {
  @BeforeConnect()
  connect(ctx: ConnectHookContext) {
    seen.push(`connect:${ctx.transport}`);
    if (ctx.url.includes('deny=1')) throw new StreamingError('forbidden', 'this client is not welcome');
    return { metadata: { ...ctx.identity.metadata, plan: 'pro' } };
  }

  @BeforeJoin()
  join(ctx: JoinHookContext): void {
    if (ctx.identity.userId.startsWith('blocked-')) {
      throw new StreamingError('forbidden', 'blocked users may not join rooms');
    }
  }

  @BeforeSubscribe()
  subscribe(ctx: SubscribeHookContext) {
    if (ctx.channel.startsWith('secret.')) throw new StreamingError('forbidden', 'no secrets');
    if (ctx.channel === 'feed') return { filters: { lang: 'en' } };
    return undefined;
  }

  @BeforePublish()
  publish(ctx: PublishHookContext) {
    return { metadata: { ...(ctx.metadata ?? {}), stamped: true } };
  }

  @BeforeSendMessage()
  async send(ctx: SendMessageHookContext) {
    if (ctx.content === 'slow') await new Promise((r) => setTimeout(r, 5000));
    if (ctx.content === 'throw') throw new Error('a bug in the app');
    if (ctx.content === 'bad result') return { content: 42 } as never;
    if (ctx.content.includes('spam')) throw new StreamingError('content_filtered', 'no spam here');
    const plan = ctx.identity.metadata.plan;
    if (ctx.content.startsWith('/shout ')) {
      return {
        content: ctx.content.slice(7).toUpperCase(),
        metadata: { ...ctx.metadata, plan, shouted: true },
      };
    }
    return { metadata: { ...ctx.metadata, plan } };
  }
}

beforeAll(async () => {
  @Module({
    imports: [
      StreamingModule.forRoot({
        historyStore: 'memory',
        auth: { jwtSecret: SECRET },
        hookTimeout: 0.5,
        contentFilters: [new BannedWordsFilter({ words: ['darn'], mode: 'mask' })],
      }),
    ],
    providers: [ChatPolicy],
  })
  class HooksModule {}
  app = await startNestApp(HooksModule, {
    configure: (a: NestExpressApplication) => a.useWebSocketAdapter(new StreamingWsAdapter(a)),
  });
});

afterAll(async () => {
  expect(await pool.closeAll()).toEqual([]);
  await app.close();
});

let n = 0;
const token = (sub: string): Promise<string> =>
  signToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });
const user = async (name: string): Promise<WsClient> =>
  pool.connect(app.wsUrl, { token: await token(`${name}-${++n}`) });

async function room(owner: WsClient): Promise<string> {
  return ((await owner.ok('create_room', { name: `hooks ${++n}` })) as { room: { id: string } }).room.id;
}

describe('@BeforeConnect', () => {
  it('refuses an upgrade with the status of the thrown error, and its message', async () => {
    const url = `${app.wsUrl}?deny=1`;
    const refused = await WsClient.expectRejected(url, { token: await token('denied') });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('this client is not welcome');
  });

  it('rewrites the identity: metadata it adds is seen by later hooks', async () => {
    const alice = await user('alice');
    const roomId = await room(alice);
    await alice.ok('send_message', { room_id: roomId, content: 'hello' });
    const msg = await alice.waitFor((e) => e.type === 'message' && e.data?.content === 'hello');
    expect(msg.data?.metadata).toEqual({ plan: 'pro' });
    expect(seen).toContain('connect:ws');
  });
});

describe('@BeforeSendMessage', () => {
  it('rewrites the message that is stored and delivered, then the content filters run on the rewrite', async () => {
    const alice = await user('alice');
    const bob = await user('bob');
    const roomId = await room(alice);
    await bob.ok('join_room', { room_id: roomId });
    await alice.ok('send_message', { room_id: roomId, content: '/shout darn it' });
    const got = await bob.waitFor((e) => e.type === 'message' && e.data?.room_id === roomId);
    expect(got.data).toMatchObject({ content: '**** IT', metadata: { plan: 'pro', shouted: true } });
    const history = (await alice.ok('get_history', { room_id: roomId })) as {
      messages: Array<{ content: string }>;
    };
    expect(history.messages.map((m) => m.content)).toEqual(['**** IT']);
  });

  it('refuses with the code and message the hook threw; nothing is stored or delivered', async () => {
    const alice = await user('alice');
    const bob = await user('bob');
    const roomId = await room(alice);
    await bob.ok('join_room', { room_id: roomId });
    const answer = await alice.request('send_message', { room_id: roomId, content: 'buy spam now' });
    expect(answer).toMatchObject({
      type: 'error',
      data: { code: 'content_filtered', message: 'no spam here' },
    });
    await bob.expectNone((e) => e.type === 'message', 300);
    expect(
      ((await alice.ok('get_history', { room_id: roomId })) as { messages: unknown[] }).messages,
    ).toEqual([]);
  });

  it('a hook that fails, returns garbage or is too slow fails only that request with internal', async () => {
    const alice = await user('alice');
    const roomId = await room(alice);
    for (const content of ['throw', 'bad result', 'slow']) {
      const answer = await alice.request('send_message', { room_id: roomId, content }, 5000);
      expect(answer).toMatchObject({ type: 'error', data: { code: 'internal' } });
    }
    // The connection goes on, and so does the room.
    await alice.ok('send_message', { room_id: roomId, content: 'still here' });
    const history = (await alice.ok('get_history', { room_id: roomId })) as {
      messages: Array<{ content: string }>;
    };
    expect(history.messages.map((m) => m.content)).toEqual(['still here']);
  });
});

describe('@BeforeJoin, @BeforeSubscribe, @BeforePublish', () => {
  it('refuses a join over WebSocket and over SSE rooms=', async () => {
    const alice = await user('alice');
    const roomId = await room(alice);
    const blocked = await user('blocked-eve');
    const answer = await blocked.request('join_room', { room_id: roomId });
    expect(answer).toMatchObject({ type: 'error', data: { code: 'forbidden' } });
    const members = (await alice.ok('get_presence', { room_id: roomId })) as { presence: unknown[] };
    expect(members.presence).toHaveLength(1);

    const events = await sseEvents(`/sse?rooms=${roomId}`, await token(`blocked-sse-${++n}`), 'error');
    expect(events).toContainEqual(expect.objectContaining({ code: 'forbidden' }));
    expect(seen).toContain('connect:sse');
  });

  it('refuses a subscription, rewrites filters of another, and stamps publications', async () => {
    const alice = await user('alice');
    expect(await alice.request('subscribe', { channel: 'secret.plans' })).toMatchObject({
      type: 'error',
      data: { code: 'forbidden', message: 'no secrets' },
    });
    await alice.ok('subscribe', { channel: 'feed' });
    const bob = await user('bob');
    await bob.ok('publish', { channel: 'feed', data: { lang: 'fr', n: 1 } });
    await bob.ok('publish', { channel: 'feed', data: { lang: 'en', n: 2 } });
    const got = await alice.waitFor((e) => e.type === 'channel_message');
    expect(got.data).toMatchObject({ data: { n: 2 }, metadata: { stamped: true } });
    await alice.expectNone((e) => e.type === 'channel_message' && e.data?.data?.n === 1, 200);
  });
});

/** Open an SSE stream, collect the data of `type` events for a moment, then close it. */
function sseEvents(path: string, jwt: string, type: string): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const out: Array<Record<string, unknown>> = [];
    const req = httpRequest(
      `${app.baseUrl}${path}`,
      { headers: { authorization: `Bearer ${jwt}` } },
      (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let end: number;
          while ((end = buf.indexOf('\n\n')) !== -1) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const ev = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (ev === type && data) out.push(JSON.parse(data) as Record<string, unknown>);
          }
        });
      },
    );
    req.on('error', reject);
    req.end();
    setTimeout(() => {
      req.destroy();
      resolve(out);
    }, 700);
  });
}
