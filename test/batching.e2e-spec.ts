/**
 * Hot-path behaviour a user can observe: a burst of pipelined requests is
 * delivered in batched frames (newline-delimited JSON), not one WebSocket
 * frame per message, and each request's ack still comes after the events it
 * caused reached the other members.
 */
import { TestApp, startDemoApp } from './support/app';
import { WsClient } from './support/ws-client';

describe('batching of broadcasts', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startDemoApp({
      JWT_SECRET: 'batching-e2e-secret-0d9e4b72a1c35f86',
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '10000',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '10000',
      FORGE_STREAMING_MAX_MESSAGES_PER_SECOND: '10000',
    });
  });
  afterAll(() => app?.close());

  it('writes a burst of 64 pipelined messages to a member in far fewer than 64 frames, in seq order', async () => {
    const sender = await WsClient.connect(app.wsUrl, { token: await app.login('burst-sender') });
    const reader = await WsClient.connect(app.wsUrl, { token: await app.login('burst-reader') });
    const room = (await sender.ok('create_room', { name: 'burst' })).room.id as string;
    await reader.ok('join_room', { room_id: room });
    const framesBefore = reader.frames.length;
    const acks = Array.from({ length: 64 }, (_, i) =>
      sender.ok('send_message', { room_id: room, content: `b${i}` }),
    );
    const seqs = (await Promise.all(acks)).map((a) => (a as { seq: number }).seq);
    expect(seqs).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    await reader.waitForCount((e) => e.type === 'message' && e.data.room_id === room, 64, 5000);
    const received = reader.envelopes
      .filter((e) => e.type === 'message' && e.data.room_id === room)
      .map((e) => e.data.seq as number);
    expect(received).toEqual(seqs);
    const frames = reader.frames.length - framesBefore;
    expect(frames).toBeLessThan(32);
    await sender.close();
    await reader.close();
  });

  it('sends an ack after the events of its request reached the other members', async () => {
    const a = await WsClient.connect(app.wsUrl, { token: await app.login('order-a') });
    const b = await WsClient.connect(app.wsUrl, { token: await app.login('order-b') });
    const room = (await a.ok('create_room', { name: 'order' })).room.id as string;
    for (let i = 0; i < 20; i++) {
      const mark = a.envelopes.length;
      await b.ok('join_room', { room_id: room });
      // When B holds its ack, A's socket has already been written the user_joined (same node).
      await a.waitFor((e) => e.type === 'user_joined' && e.data.user_id === 'order-b', 1000, mark);
      await b.ok('leave_room', { room_id: room });
    }
    await a.close();
    await b.close();
  });
});
