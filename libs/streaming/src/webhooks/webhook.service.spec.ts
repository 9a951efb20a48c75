import { defaultStreamingOptions } from '../config/streaming-defaults';
import type { StreamingOptions } from '../config/streaming-options.interface';
import { StreamingEvents, type StreamingEventMap } from '../events/streaming-events';
import { StreamingMetricsService } from '../metrics/streaming-metrics.service';
import type { WebhookPost } from './webhook-dispatcher';
import { WebhookService, webhookData, type WebhookBody } from './webhook.service';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

const connection: StreamingEventMap['connect'] = {
  connectionId: 'c-1',
  userId: 'alice',
  identity: { userId: 'alice', sessionId: 's-1', roles: [], anonymous: false, metadata: { plan: 'pro' } },
  transport: 'ws',
};
const message: StreamingEventMap['room_message'] = {
  roomId: 'r-1',
  message: {
    id: 'm-1',
    seq: 3,
    room_id: 'r-1',
    user_id: 'alice',
    content: 'hi',
    metadata: {},
    timestamp: '2025-01-01T00:00:00.000Z',
    reactions: {},
  },
};

function setup(options: Partial<StreamingOptions>, post?: WebhookPost) {
  const events = new StreamingEvents();
  const metrics = new StreamingMetricsService();
  const bodies: WebhookBody[] = [];
  const service = new WebhookService(
    { ...defaultStreamingOptions(), nodeId: 'node-a', webhookSecret: 'whsec-service-0123456789', ...options },
    events,
    metrics,
    {
      backoffBaseMs: 5,
      post:
        post ??
        (async (_url, body) => {
          bodies.push(JSON.parse(body) as WebhookBody);
          return 200;
        }),
    },
  );
  service.onModuleInit();
  return { events, metrics, service, bodies };
}

describe('webhookData', () => {
  it('is the wire shape of each event', () => {
    expect(webhookData('connect', connection)).toEqual({
      connection_id: 'c-1',
      user_id: 'alice',
      session_id: 's-1',
      transport: 'ws',
    });
    expect(webhookData('disconnect', { ...connection, transport: 'sse' })).toMatchObject({
      transport: 'sse',
    });
    expect(webhookData('room_message', message)).toEqual(message.message);
    const presence = { user_id: 'alice', status: 'away' as const, last_seen: '2025-01-01T00:00:00.000Z' };
    expect(webhookData('presence', { userId: 'alice', presence })).toEqual(presence);
  });
});

describe('WebhookService', () => {
  it('listens to nothing without webhookUrls', () => {
    const { events, service } = setup({ webhookUrls: [] });
    for (const e of ['connect', 'disconnect', 'room_message', 'presence'] as const)
      expect(events.has(e)).toBe(false);
    expect(service.enabled).toBe(false);
    expect(service.pending).toBe(0);
    service.onApplicationShutdown();
  });

  it('listens to the configured events only, and stops at shutdown', () => {
    const { events, service } = setup({
      webhookUrls: ['http://x.test/h'],
      webhookEvents: ['room_message', 'connect'],
    });
    expect(events.has('room_message')).toBe(true);
    expect(events.has('connect')).toBe(true);
    expect(events.has('disconnect')).toBe(false);
    expect(events.has('presence')).toBe(false);
    expect(service.enabled).toBe(true);
    service.onApplicationShutdown();
    expect(events.has('room_message')).toBe(false);
    expect(events.has('connect')).toBe(false);
    expect(service.enabled).toBe(false);
  });

  it('posts {id, type, node_id, timestamp, data} for each event and counts the deliveries', async () => {
    const { events, metrics, service, bodies } = setup({ webhookUrls: ['http://x.test/h'] });
    events.emit('connect', connection);
    events.emit('room_message', message);
    events.emit('disconnect', connection);
    await tick();
    for (let i = 0; i < 50 && bodies.length < 3; i++) await tick();
    expect(bodies.map((b) => b.type)).toEqual(['connect', 'room_message', 'disconnect']);
    expect(new Set(bodies.map((b) => b.id)).size).toBe(3);
    for (const b of bodies) {
      expect(Object.keys(b).sort()).toEqual(['data', 'id', 'node_id', 'timestamp', 'type']);
      expect(b.node_id).toBe('node-a');
      expect(b.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(Number.isNaN(Date.parse(b.timestamp))).toBe(false);
    }
    expect(bodies[1].data).toEqual(message.message);
    const text = await metrics.registry.metrics();
    expect(text).toContain('streaming_webhook_deliveries_total{result="success"} 3');
    expect(text).toContain('streaming_webhook_attempts_total{result="success"} 3');
    service.onApplicationShutdown();
  });

  it('never makes the emitter wait, and drops what is pending at shutdown (counted)', async () => {
    const hang: WebhookPost = (_u, _b, _h, signal) =>
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    const { events, metrics, service } = setup(
      { webhookUrls: ['http://x.test/h'], webhookQueueSize: 3 },
      hang,
    );
    for (let i = 0; i < 5; i++) events.emit('room_message', message);
    await tick();
    expect(service.pending).toBe(3);
    let text = await metrics.registry.metrics();
    expect(text).toContain('streaming_webhook_dropped_total{reason="queue_full"} 2');
    expect(text).toContain('streaming_webhook_pending 3');
    service.onApplicationShutdown();
    text = await metrics.registry.metrics();
    expect(text).toContain('streaming_webhook_dropped_total{reason="shutdown"} 3');
    expect(text).toContain('streaming_webhook_pending 0');
  });
});
