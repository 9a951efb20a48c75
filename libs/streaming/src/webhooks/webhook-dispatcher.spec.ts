import { createHmac } from 'node:crypto';
import {
  WebhookDispatcher,
  webhookBackoffMs,
  type WebhookDispatcherConfig,
  type WebhookDropReason,
  type WebhookPost,
  type WebhookTuning,
} from './webhook-dispatcher';

const SECRET = 'whsec-dispatcher-0123456789';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(fn: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(2);
  }
}

interface Call {
  url: string;
  body: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  at: number;
}

/** A dispatcher whose POSTs go to `answer`, with everything it reports recorded. */
function harness(
  answer: (call: Call, n: number) => Promise<number>,
  config: Partial<WebhookDispatcherConfig> = {},
  tuning: Partial<WebhookTuning> = {},
) {
  const calls: Call[] = [];
  const attempts: string[] = [];
  const settled: string[] = [];
  const dropped: Partial<Record<WebhookDropReason, number>> = {};
  const warnings: string[] = [];
  let active = 0;
  let maxActive = 0;
  const post: WebhookPost = async (url, body, headers, signal) => {
    const call = { url, body, headers, signal, at: Date.now() };
    calls.push(call);
    active++;
    maxActive = Math.max(maxActive, active);
    try {
      return await answer(call, calls.length);
    } finally {
      active--;
    }
  };
  const dispatcher = new WebhookDispatcher(
    {
      urls: ['http://a.test/hook'],
      secret: SECRET,
      queueSize: 100,
      maxAttempts: 5,
      timeoutMs: 1000,
      ...config,
    },
    { backoffBaseMs: 5, backoffMaxMs: 1000, concurrency: 8, dropLogIntervalMs: 60_000, post, ...tuning },
    {
      attempt: (r) => attempts.push(r),
      settled: (r) => settled.push(r),
      dropped: (reason, n) => (dropped[reason] = (dropped[reason] ?? 0) + n),
    },
    { warn: (m) => warnings.push(m) },
  );
  return { dispatcher, calls, attempts, settled, dropped, warnings, maxActive: () => maxActive };
}

/** A POST that never answers, only failing when aborted (like fetch). */
const hang = (call: Call): Promise<number> =>
  new Promise((_, reject) => call.signal.addEventListener('abort', () => reject(new Error('aborted'))));

describe('webhookBackoffMs', () => {
  it('doubles from the base up to the cap', () => {
    const top = (): number => 1; // no jitter taken off
    expect([1, 2, 3, 4, 5].map((n) => webhookBackoffMs(n, 500, 60_000, top))).toEqual([
      500, 1000, 2000, 4000, 8000,
    ]);
    expect(webhookBackoffMs(8, 500, 60_000, top)).toBe(60_000);
    expect(webhookBackoffMs(50, 500, 60_000, top)).toBe(60_000);
  });

  it('takes a random half off at most (equal jitter), so waits still grow', () => {
    expect(webhookBackoffMs(1, 500, 60_000, () => 0)).toBe(250);
    expect(webhookBackoffMs(3, 500, 60_000, () => 0)).toBe(1000);
    for (let i = 0; i < 200; i++) {
      const n = 1 + (i % 10);
      const w = webhookBackoffMs(n, 500, 60_000);
      const nominal = Math.min(60_000, 500 * 2 ** (n - 1));
      expect(w).toBeGreaterThanOrEqual(nominal / 2);
      expect(w).toBeLessThanOrEqual(nominal);
      // The shortest wait after n+1 failures is never below the longest after n (below the cap).
      if (nominal * 2 <= 60_000)
        expect(webhookBackoffMs(n + 1, 500, 60_000, () => 0)).toBeGreaterThanOrEqual(w);
    }
  });

  it('ignores a random source out of range', () => {
    expect(webhookBackoffMs(1, 500, 60_000, () => 7)).toBe(500);
    expect(webhookBackoffMs(1, 500, 60_000, () => -1)).toBe(250);
  });
});

describe('WebhookDispatcher', () => {
  it('signs each try, keeps the id across retries, and retries after growing waits until a 2xx', async () => {
    const h = harness(
      async (_c, n) => {
        if (n === 1) return 500;
        if (n === 2) throw new TypeError('fetch failed');
        if (n === 3) return 302;
        return 204;
      },
      {},
      { backoffBaseMs: 20, random: () => 0 },
    );
    const body = JSON.stringify({ id: 'evt-1', type: 'connect' });
    expect(h.dispatcher.send('evt-1', body)).toBe(1);
    await until(() => h.settled.length === 1);
    expect(h.attempts).toEqual(['http_error', 'network_error', 'http_error', 'success']);
    expect(h.settled).toEqual(['success']);
    expect(h.calls).toHaveLength(4);
    for (const c of h.calls) {
      expect(c.url).toBe('http://a.test/hook');
      expect(c.body).toBe(body);
      expect(c.headers['Content-Type']).toBe('application/json');
      expect(c.headers['X-Streaming-Webhook-Id']).toBe('evt-1');
      const ts = c.headers['X-Streaming-Timestamp'];
      expect(ts).toMatch(/^\d+$/);
      expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(10);
      const hmac = createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex');
      expect(c.headers['X-Streaming-Signature']).toBe(`v1=${hmac}`);
    }
    // Waits of at least 10, 20, 40 ms (jitter at its lowest): lower bounds only, load only lengthens them.
    const gaps = h.calls.slice(1).map((c, i) => c.at - h.calls[i].at);
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[1]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeGreaterThanOrEqual(39);
    expect(h.dispatcher.pending).toBe(0);
    expect(h.dropped).toEqual({});
  });

  it('gives up after maxAttempts tries: counted, logged', async () => {
    const h = harness(async () => 503, { maxAttempts: 3 }, { dropLogIntervalMs: 0 });
    h.dispatcher.send('evt-2', '{}');
    await until(() => h.settled.length === 1);
    expect(h.calls).toHaveLength(3);
    expect(h.attempts).toEqual(['http_error', 'http_error', 'http_error']);
    expect(h.settled).toEqual(['failed']);
    expect(h.dropped).toEqual({ max_attempts: 1 });
    expect(h.dispatcher.pending).toBe(0);
    expect(h.warnings).toHaveLength(1);
    expect(h.warnings[0]).toContain('every try failed');
    expect(h.warnings[0]).toContain('HTTP 503');
    await sleep(50);
    expect(h.calls).toHaveLength(3);
  });

  it('times a silent receiver out and frees its slot', async () => {
    const ignoresAbort = (): Promise<number> => new Promise(() => undefined);
    const h = harness(ignoresAbort, { timeoutMs: 30, maxAttempts: 2 }, { concurrency: 1 });
    h.dispatcher.send('evt-3', '{}');
    await until(() => h.settled.length === 1);
    expect(h.attempts).toEqual(['timeout', 'timeout']);
    expect(h.dropped).toEqual({ max_attempts: 1 });
    expect(h.dispatcher.active).toBe(0);
  });

  it('sends to every URL, one delivery each, with the same id', async () => {
    const h = harness(async () => 200, { urls: ['http://a.test/1', 'http://b.test/2'] });
    expect(h.dispatcher.send('evt-4', '{"x":1}')).toBe(2);
    await until(() => h.settled.length === 2);
    expect(h.calls.map((c) => c.url).sort()).toEqual(['http://a.test/1', 'http://b.test/2']);
    expect(new Set(h.calls.map((c) => c.headers['X-Streaming-Webhook-Id']))).toEqual(new Set(['evt-4']));
  });

  it('bounds the queue: deliveries waiting, in flight or retrying; the newest is dropped past it', async () => {
    const h = harness(hang, { queueSize: 5 }, { concurrency: 2 });
    const queued = Array.from({ length: 8 }, (_, i) => h.dispatcher.send(`e${i}`, `{"i":${i}}`));
    expect(queued).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
    expect(h.dispatcher.pending).toBe(5);
    expect(h.dispatcher.active).toBe(2);
    expect(h.calls.map((c) => (JSON.parse(c.body) as { i: number }).i)).toEqual([0, 1]);
    expect(h.dropped).toEqual({ queue_full: 3 });
    // Logged once, not once per drop.
    expect(h.warnings).toHaveLength(1);
    expect(h.warnings[0]).toContain('queue full');
    // Shutdown: timers stopped, POSTs aborted, the rest dropped and counted.
    expect(h.dispatcher.close()).toBe(5);
    expect(h.dropped).toEqual({ queue_full: 3, shutdown: 5 });
    expect(h.calls.every((c) => c.signal.aborted)).toBe(true);
    expect(h.dispatcher.pending).toBe(0);
    expect(h.dispatcher.send('late', '{}')).toBe(0);
    await sleep(20);
    expect(h.calls).toHaveLength(2);
    expect(h.attempts).toEqual([]);
  });

  it('counts retrying deliveries against the queue, and clears their timers on close', async () => {
    const h = harness(async () => 500, { queueSize: 2 }, { backoffBaseMs: 10_000 });
    h.dispatcher.send('a', '{}');
    h.dispatcher.send('b', '{}');
    await until(() => h.attempts.length === 2);
    expect(h.dispatcher.pending).toBe(2);
    expect(h.dispatcher.active).toBe(0);
    expect(h.dispatcher.send('c', '{}')).toBe(0);
    expect(h.dropped).toEqual({ queue_full: 1 });
    expect(h.dispatcher.close()).toBe(2);
    expect(h.dispatcher.close()).toBe(0);
    expect(h.dropped).toEqual({ queue_full: 1, shutdown: 2 });
  });

  it('keeps at most `concurrency` POSTs in flight, in order of arrival', async () => {
    const h = harness(
      async () => {
        await sleep(5);
        return 200;
      },
      {},
      { concurrency: 3 },
    );
    for (let i = 0; i < 20; i++) h.dispatcher.send(`e${i}`, `{"i":${i}}`);
    expect(h.dispatcher.active).toBe(3);
    await until(() => h.settled.length === 20);
    expect(h.maxActive()).toBe(3);
    expect(h.calls.map((c) => (JSON.parse(c.body) as { i: number }).i)).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  it('logs drops at most once per interval, the rest on a later line with their count', async () => {
    const h = harness(hang, { queueSize: 1 }, { dropLogIntervalMs: 40, concurrency: 1 });
    for (let i = 0; i < 10; i++) h.dispatcher.send(`e${i}`, '{}');
    expect(h.dropped).toEqual({ queue_full: 9 });
    expect(h.warnings).toHaveLength(1);
    expect(h.warnings[0]).toMatch(/dropped: 1 \(queue full/);
    await until(() => h.warnings.length === 2);
    expect(h.warnings[1]).toMatch(/dropped: 8 \(queue full/);
    h.dispatcher.close();
  });

  it('returns from send at once even when every receiver hangs', () => {
    const h = harness(hang, { queueSize: 10_000 });
    const started = Date.now();
    for (let i = 0; i < 5000; i++) h.dispatcher.send(`e${i}`, '{}');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(h.dispatcher.active).toBe(8);
    expect(h.dispatcher.close()).toBe(5000);
  });
});
