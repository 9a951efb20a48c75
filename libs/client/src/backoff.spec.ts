import { backoffCeiling, backoffDelay, DEFAULT_BACKOFF } from './backoff';
import { parseFrame } from './ndjson';
import { toHttpBase, toWsUrl } from './transports';

describe('backoff', () => {
  it('grows the ceiling exponentially up to the cap', () => {
    const o = { initialDelayMs: 500, maxDelayMs: 15000, factor: 2 };
    expect([0, 1, 2, 3, 4, 5, 6, 10].map((a) => backoffCeiling(a, o))).toEqual([
      500, 1000, 2000, 4000, 8000, 15000, 15000, 15000,
    ]);
    expect(backoffCeiling(10_000, o)).toBe(15000); // no Infinity / NaN
  });

  it('uses full jitter: random(0, ceiling)', () => {
    const o = DEFAULT_BACKOFF;
    expect(backoffDelay(3, o, () => 0)).toBe(0);
    expect(backoffDelay(3, o, () => 0.5)).toBe(2000);
    expect(backoffDelay(3, o, () => 0.999999)).toBe(3999);
    for (let attempt = 0; attempt < 12; attempt++) {
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, o);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(backoffCeiling(attempt, o));
      }
    }
  });

  it('spreads delays (jitter) and their mean grows with the attempt', () => {
    const o = { initialDelayMs: 100, maxDelayMs: 100000, factor: 2 };
    const sample = (attempt: number) => Array.from({ length: 400 }, () => backoffDelay(attempt, o));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const a1 = sample(1);
    const a4 = sample(4);
    expect(new Set(a4).size).toBeGreaterThan(50);
    expect(mean(a4)).toBeGreaterThan(mean(a1) * 4);
  });
});

describe('parseFrame', () => {
  it('splits newline-delimited envelopes and skips junk', () => {
    const text = [
      '{"type":"ack","id":"1","data":{"ok":true}}',
      '',
      'not json',
      '[1,2]',
      '{"no_type":1}',
      '{"type":"message","data":{"seq":1}}\r',
    ].join('\n');
    expect(parseFrame(text)).toEqual([
      { type: 'ack', id: '1', data: { ok: true } },
      { type: 'message', data: { seq: 1 } },
    ]);
  });
});

describe('URL helpers', () => {
  it('derives the WebSocket endpoint and the HTTP base from each other', () => {
    expect(toWsUrl('http://h:3000').toString()).toBe('ws://h:3000/ws');
    expect(toWsUrl('https://h/').toString()).toBe('wss://h/ws');
    expect(toWsUrl('ws://h:1/ws').toString()).toBe('ws://h:1/ws');
    expect(toHttpBase('ws://h:3000/ws')).toBe('http://h:3000');
    expect(toHttpBase('wss://h/chat/ws')).toBe('https://h/chat');
    expect(toHttpBase('http://h:3000/')).toBe('http://h:3000');
  });
});

describe('routing through GET /_/streaming/route', () => {
  it('connects to the address the server names for the room, and to url when it names none', async () => {
    const { StreamingClient } = await import('./client');
    const opened: string[] = [];
    class FakeWs {
      onopen?: () => void;
      onmessage?: (ev: { data: unknown }) => void;
      onclose?: (ev: { code: number; reason: string }) => void;
      onerror?: (ev: unknown) => void;
      readyState = 0;
      constructor(url: string) {
        opened.push(url);
        setTimeout(() => {
          this.readyState = 1;
          this.onopen?.();
          this.onmessage?.({
            data: JSON.stringify({
              type: 'connected',
              data: {
                connection_id: 'c',
                user_id: 'u',
                session_id: 's',
                node_id: 'n',
                ping_interval_ms: 1000,
              },
            }),
          });
        }, 0);
      }
      send(): void {}
      close(): void {}
    }
    const asked: string[] = [];
    const fetchRoute = (address: string | null) => (input: string) => {
      asked.push(input);
      return Promise.resolve({
        ok: true,
        status: 200,
        text: () => Promise.resolve(JSON.stringify({ node_id: 'n2', address })),
      });
    };
    const routed = new StreamingClient({
      url: 'ws://node-a.test:3000/ws',
      token: 't',
      WebSocket: FakeWs as never,
      fetch: fetchRoute('http://node-b.test:3001'),
      route: { room: 'general' },
    });
    await routed.connect();
    routed.close();
    expect(asked[0]).toBe('http://node-a.test:3000/_/streaming/route?room=general');
    expect(opened[0]).toBe('ws://node-b.test:3001/ws?token=t');

    const plain = new StreamingClient({
      url: 'ws://node-a.test:3000/ws',
      token: 't',
      WebSocket: FakeWs as never,
      fetch: fetchRoute(null),
      route: { user: 'u' },
    });
    await plain.connect();
    plain.close();
    expect(opened[1]).toBe('ws://node-a.test:3000/ws?token=t');
  });
});
