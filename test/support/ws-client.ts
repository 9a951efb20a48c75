/**
 * A deliberately small raw WebSocket client for the wire protocol (the `ws`
 * package, no project code): splits newline-delimited frames, records every
 * envelope in arrival order, and waits for envelopes with bounded timeouts.
 */
import { randomUUID } from 'node:crypto';
import WebSocket, { type RawData } from 'ws';

/** Untyped JSON from the wire: tests assert its shape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** A server to client envelope. */
export interface Envelope {
  type: string;
  id?: string;
  data: Json;
}

export type EnvelopePredicate = (e: Envelope) => boolean;

export interface ConnectOptions {
  /** JWT; sent as `?token=` (default) or in the Authorization header (`via: 'header'`). */
  token?: string;
  via?: 'query' | 'header';
  headers?: Record<string, string>;
  /** Answer server pings automatically (ws default true); false simulates a dead peer. */
  autoPong?: boolean;
  /** Bound on the handshake plus the `connected` envelope. */
  timeoutMs?: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** Envelope helpers for predicates. */
export const isType =
  (type: string): EnvelopePredicate =>
  (e) =>
    e.type === type;
export const isError =
  (code: string): EnvelopePredicate =>
  (e) =>
    e.type === 'error' && e.data?.code === code;
export const isMessage =
  (content: string): EnvelopePredicate =>
  (e) =>
    e.type === 'message' && e.data?.content === content;

function urlWithToken(url: string, token: string | undefined, via: 'query' | 'header'): string {
  if (token === undefined || via !== 'query') return url;
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

function wsOptions(o: ConnectOptions): WebSocket.ClientOptions {
  const headers = { ...o.headers };
  if (o.token !== undefined && o.via === 'header') headers.Authorization = `Bearer ${o.token}`;
  return { headers, autoPong: o.autoPong ?? true, handshakeTimeout: o.timeoutMs ?? 5000 };
}

export class WsClient {
  /** Every envelope received, in order (one frame may carry several). */
  readonly envelopes: Envelope[] = [];
  /** Raw text frames received. */
  readonly frames: string[] = [];
  /** Lines that were not JSON envelopes (should stay empty). */
  readonly garbage: string[] = [];
  /** The `connected` envelope. */
  connected!: Envelope;
  /** Set once the socket closed. */
  closeInfo?: CloseInfo;

  private readonly listeners = new Set<() => void>();
  private readonly closed: Promise<CloseInfo>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (raw: RawData, isBinary: boolean) => {
      const text = (Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw as Buffer)).toString('utf8');
      if (isBinary) {
        this.garbage.push(`<binary> ${text}`);
        return;
      }
      this.frames.push(text);
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        try {
          const env = JSON.parse(line) as Envelope;
          if (typeof env !== 'object' || env === null || typeof env.type !== 'string')
            this.garbage.push(line);
          else this.envelopes.push(env);
        } catch {
          this.garbage.push(line);
        }
      }
      this.notify();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        resolve(this.closeInfo);
        this.notify();
      });
    });
    socket.on('error', () => undefined);
  }

  /** Open a connection and resolve after the `connected` envelope (which must come first). */
  static async connect(url: string, options: ConnectOptions = {}): Promise<WsClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = new WebSocket(
      urlWithToken(url, options.token, options.via ?? 'query'),
      wsOptions(options),
    );
    const client = new WsClient(socket);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
        socket.once('open', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('unexpected-response', (_req, res) => {
          clearTimeout(timer);
          reject(new Error(`upgrade refused with HTTP ${res.statusCode}`));
        });
        socket.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      const first = await client.waitFor(() => true, timeoutMs);
      if (first.type !== 'connected') throw new Error(`first envelope is ${JSON.stringify(first)}`);
      client.connected = first;
      return client;
    } catch (err) {
      socket.terminate();
      throw err;
    }
  }

  /**
   * Attempt an upgrade that the server is expected to refuse; resolves with
   * the HTTP status and body of the refusal. Rejects if the socket opens.
   */
  static async expectRejected(
    url: string,
    options: ConnectOptions = {},
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = new WebSocket(
      urlWithToken(url, options.token, options.via ?? 'query'),
      wsOptions(options),
    );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error(`no answer to the upgrade within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.on('error', () => undefined);
      socket.once('open', () => {
        clearTimeout(timer);
        socket.terminate();
        reject(new Error('the upgrade was accepted'));
      });
      socket.once('unexpected-response', (req, res) => {
        clearTimeout(timer);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        const done = () => {
          req.destroy();
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        };
        res.once('end', done);
        res.once('error', done);
        res.once('close', done);
      });
    });
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Send one envelope (serialized as JSON). */
  send(envelope: { type: string; id?: string; data?: unknown } | Record<string, unknown>): void {
    this.socket.send(JSON.stringify(envelope));
  }

  /** Send a text frame as is. */
  sendRaw(text: string): void {
    this.socket.send(text);
  }

  /** Send a binary frame. */
  sendBinary(bytes: Buffer): void {
    this.socket.send(bytes, { binary: true });
  }

  /** Send a request with a fresh id; resolves with the envelope answering it (`ack`, `error`, or `pong`). */
  async request(type: string, data?: unknown, timeoutMs = 3000): Promise<Envelope> {
    const id = randomUUID();
    const env: Record<string, unknown> = { type, id };
    if (data !== undefined) env.data = data;
    const from = this.envelopes.length;
    this.send(env);
    return this.waitFor((e) => e.id === id, timeoutMs, from);
  }

  /** Like {@link request} but throws unless the answer is an `ack`; returns the ack's data. */
  async ok(type: string, data?: unknown, timeoutMs = 3000): Promise<Json> {
    const answer = await this.request(type, data, timeoutMs);
    if (answer.type !== 'ack') throw new Error(`${type} answered ${JSON.stringify(answer)}`);
    return answer.data;
  }

  /** Envelopes matching `predicate` received so far (from index `from`). */
  all(predicate: EnvelopePredicate, from = 0): Envelope[] {
    return this.envelopes.slice(from).filter(predicate);
  }

  /**
   * The first envelope matching `predicate`, among those already received
   * (from index `from`) or arriving within `timeoutMs`.
   */
  waitFor(predicate: EnvelopePredicate, timeoutMs = 3000, from = 0): Promise<Envelope> {
    const found = this.envelopes.slice(from).find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      let scanned = this.envelopes.length;
      const check = (): void => {
        for (; scanned < this.envelopes.length; scanned++) {
          if (scanned >= from && predicate(this.envelopes[scanned])) {
            finish();
            resolve(this.envelopes[scanned]);
            return;
          }
        }
        if (this.closeInfo) {
          finish();
          reject(
            new Error(`socket closed (${this.closeInfo.code}) while waiting; got ${this.describe(from)}`),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no matching envelope within ${timeoutMs} ms; got ${this.describe(from)}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Wait until `count` envelopes (from index `from`) match `predicate`; returns all matching ones. */
  async waitForCount(
    predicate: EnvelopePredicate,
    count: number,
    timeoutMs = 3000,
    from = 0,
  ): Promise<Envelope[]> {
    let n = 0;
    await this.waitFor((e) => predicate(e) && ++n >= count, timeoutMs, from).catch((err: Error) => {
      throw new Error(
        `expected ${count} matching envelopes, got ${this.all(predicate, from).length}: ${err.message}`,
      );
    });
    return this.all(predicate, from);
  }

  /** Resolve after `ms` if no envelope (already received from `from`, or arriving) matches; reject at once on a match. */
  expectNone(predicate: EnvelopePredicate, ms = 300, from = 0): Promise<void> {
    const bad = this.envelopes.slice(from).find(predicate);
    if (bad) return Promise.reject(new Error(`unexpected envelope ${JSON.stringify(bad)}`));
    return new Promise((resolve, reject) => {
      let scanned = this.envelopes.length;
      const check = (): void => {
        for (; scanned < this.envelopes.length; scanned++) {
          if (predicate(this.envelopes[scanned])) {
            finish();
            reject(new Error(`unexpected envelope ${JSON.stringify(this.envelopes[scanned])}`));
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        finish();
        resolve();
      }, ms);
      const finish = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  /** Resolve with the close code and reason once the socket closes (bounded). */
  waitForClose(timeoutMs = 3000): Promise<CloseInfo> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
      void this.closed.then((info) => {
        clearTimeout(timer);
        resolve(info);
      });
    });
  }

  /** Close (normal closure), terminating if the server does not complete the handshake in time. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closeInfo) return;
    if (this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN) {
      this.socket.close(1000, 'test done');
    }
    try {
      await this.waitForClose(timeoutMs);
    } catch {
      this.socket.terminate();
      await this.waitForClose(1000).catch(() => undefined);
    }
  }

  /**
   * Frames that break PROTOCOL.md section 3 (server to client envelopes are
   * `{type: string, id?: string, data: object}`; non-JSON lines count too).
   */
  protocolViolations(): string[] {
    const bad = this.garbage.map((g) => `not an envelope: ${g.slice(0, 200)}`);
    for (const e of this.envelopes) {
      const data: unknown = e.data;
      const keys = Object.keys(e).filter((k) => k !== 'type' && k !== 'id' && k !== 'data');
      if (typeof data !== 'object' || data === null || Array.isArray(data)) {
        bad.push(`data is not an object: ${JSON.stringify(e).slice(0, 200)}`);
      }
      if (e.id !== undefined && typeof e.id !== 'string') bad.push(`non-string id: ${JSON.stringify(e.id)}`);
      if (keys.length > 0) bad.push(`unexpected top-level keys ${keys.join(',')} in ${e.type}`);
    }
    return bad;
  }

  /** Drop the TCP connection without a close handshake. */
  terminate(): void {
    this.socket.terminate();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private describe(from: number): string {
    const tail = this.envelopes.slice(from).slice(-8);
    return `${this.envelopes.length - from} envelope(s), last: ${JSON.stringify(tail)}`;
  }
}

/** Connects and closes many clients; `closeAll()` in afterEach/afterAll. */
export class ClientPool {
  private readonly clients = new Set<WsClient>();

  async connect(url: string, options: ConnectOptions = {}): Promise<WsClient> {
    const c = await WsClient.connect(url, options);
    this.clients.add(c);
    return c;
  }

  /** Close every client; returns the protocol violations any of them saw (see {@link WsClient.protocolViolations}). */
  async closeAll(): Promise<string[]> {
    const all = [...this.clients];
    this.clients.clear();
    await Promise.all(all.map((c) => c.close()));
    return all.flatMap((c) => c.protocolViolations());
  }
}
