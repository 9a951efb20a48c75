/**
 * TLS with a certificate the test generates (the demo then serves https and
 * wss), and SSE streams whose channel subscriptions are managed over REST.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { TestApp, eventually, startDemoApp } from './support/app';
import { WsClient } from './support/ws-client';
import { DEMO_MAIN, REPO_ROOT, buildDemoApp, freePort } from './support/client-server';

jest.setTimeout(60_000);

function httpsGet(
  url: string,
  ca: Buffer,
  init: https.RequestOptions = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca, ...init }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(init.method === 'POST' ? JSON.stringify({ username: 'tls-user' }) : undefined);
  });
}

describe('TLS (tls_enabled with a generated certificate)', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let port: number;
  let cert: Buffer;
  let output = '';

  beforeAll(async () => {
    const openssl = spawnSync('sh', ['-c', 'command -v openssl']);
    if (openssl.status !== 0)
      throw new Error('openssl not found: install it with "apt-get install -y openssl"');
    dir = mkdtempSync(join(tmpdir(), 'streaming-tls-'));
    const gen = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { encoding: 'utf8' },
    );
    if (gen.status !== 0) throw new Error(`openssl failed: ${gen.stderr}`);
    cert = readFileSync(join(dir, 'cert.pem'));
    buildDemoApp();
    port = await freePort();
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env))
      if (!k.startsWith('FORGE_STREAMING_') && k !== 'JWT_SECRET') env[k] = v;
    Object.assign(env, {
      PORT: String(port),
      HOST: '127.0.0.1',
      JWT_SECRET: 'tls-sse-e2e-tls-secret-8e3f51c2a7d94b06',
      FORGE_STREAMING_HISTORY_STORE: 'memory',
      FORGE_STREAMING_TLS_ENABLED: 'true',
      FORGE_STREAMING_TLS_CERT_FILE: join(dir, 'cert.pem'),
      FORGE_STREAMING_TLS_KEY_FILE: join(dir, 'key.pem'),
    });
    child = spawn(process.execPath, [DEMO_MAIN], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await eventually(async () => {
      const r = await httpsGet(`https://127.0.0.1:${port}/_/health/streaming`, cert);
      if (r.status !== 200) throw new Error(`health ${r.status}`);
    }, 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });
  });

  afterAll(() => {
    child?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves https and wss with the certificate, and refuses plain http and ws', async () => {
    const login = await httpsGet(`https://127.0.0.1:${port}/api/auth/login`, cert, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
    });
    expect(login.status).toBe(200);
    const token = (JSON.parse(login.body) as { token: string }).token;
    const ws = new WebSocket(`wss://127.0.0.1:${port}/ws?token=${token}`, { ca: cert });
    const first = await new Promise<{ type: string; data: { user_id: string } }>((resolve, reject) => {
      ws.once('message', (d: Buffer) =>
        resolve(JSON.parse(d.toString()) as { type: string; data: { user_id: string } }),
      );
      ws.once('error', reject);
    });
    expect(first.type).toBe('connected');
    expect(first.data.user_id).toBe('tls-user');
    ws.send(JSON.stringify({ type: 'ping', id: 'p' }));
    const pong = await new Promise<{ type: string; id: string }>((resolve) =>
      ws.once('message', (d: Buffer) => resolve(JSON.parse(d.toString()) as { type: string; id: string })),
    );
    expect(pong).toMatchObject({ type: 'pong', id: 'p' });
    ws.close();
    // An unknown certificate is refused by a verifying client; plain ws gets no WebSocket.
    await expect(httpsGet(`https://127.0.0.1:${port}/_/health/streaming`, Buffer.from(''))).rejects.toThrow();
    const plain = await new Promise<string>((resolve) => {
      const s = new WebSocket(`ws://127.0.0.1:${port}/ws?token=${token}`);
      s.on('open', () => resolve('open'));
      s.on('error', () => resolve('error'));
      s.on('close', () => resolve('closed'));
    });
    expect(plain).not.toBe('open');
  });
});

describe('SSE streams with channel subscriptions over REST', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startDemoApp({ JWT_SECRET: 'tls-sse-e2e-sse-secret-1b7c94e0d2a6f385' });
  });
  afterAll(() => app?.close());

  it('subscribes and unsubscribes an open stream by its connection id; only its owner may', async () => {
    const token = await app.login('sse-owner');
    const events: Array<{ type: string; data: Record<string, unknown> }> = [];
    const es = new EventSource(`${app.baseUrl}/sse?token=${token}`);
    for (const type of ['connected', 'channel_message', 'error']) {
      es.addEventListener(type, (e: MessageEvent<string>) =>
        events.push({ type, data: JSON.parse(e.data) as Record<string, unknown> }),
      );
    }
    try {
      const connected = await eventually(() => {
        const c = events.find((e) => e.type === 'connected');
        if (!c) throw new Error('no connected event yet');
        return c.data;
      });
      const id = connected.connection_id as string;
      expect(connected.transport).toBe('sse');
      const sub = await app.http('POST', `/sse/${id}/subscriptions`, {
        token,
        body: { channel: 'news.*', filters: { lang: 'en' } },
      });
      expect(sub.status).toBe(200);
      expect(sub.json).toEqual({ channel: 'news.*' });

      const other = await app.login('sse-other');
      const refused = await app.http('POST', `/sse/${id}/subscriptions`, {
        token: other,
        body: { channel: 'news.*' },
      });
      expect(refused.status).toBe(403);
      expect((await app.http('POST', `/sse/${id}/subscriptions`, { body: { channel: 'x' } })).status).toBe(
        401,
      );
      expect(
        (await app.http('POST', `/sse/${id}/subscriptions`, { token, body: { channel: 'a..b' } })).status,
      ).toBe(400);

      const publisher = await WsClient.connect(app.wsUrl, { token: other });
      await publisher.ok('publish', { channel: 'news.sport', data: { lang: 'en', n: 1 } });
      await publisher.ok('publish', { channel: 'news.sport', data: { lang: 'fr', n: 2 } });
      await eventually(() => {
        if (!events.some((e) => e.type === 'channel_message' && (e.data.data as { n: number }).n === 1))
          throw new Error('not yet');
      });
      const unsub = await app.http('POST', `/sse/${id}/unsubscribe`, { token, body: { channel: 'news.*' } });
      expect(unsub.json).toEqual({ channel: 'news.*', removed: true });
      await publisher.ok('publish', { channel: 'news.sport', data: { lang: 'en', n: 3 } });
      await new Promise((r) => setTimeout(r, 300));
      expect(
        events.filter((e) => e.type === 'channel_message').map((e) => (e.data.data as { n: number }).n),
      ).toEqual([1]);
      await publisher.close();
    } finally {
      es.close();
    }
  });
});
