// One benchmark client connection, for the three servers under test. All three
// use the same `ws` client and the same cheap delivery scan (no JSON.parse of
// broadcast frames), so the client side costs the same whatever the server.
//
//   ws-bare   our bare `ws` loop:       JSON envelopes {type, id?, data} (no batching)
//   socketio  NestJS + socket.io:       Engine.IO v4 / Socket.IO v5 packets over a raw WebSocket
//   ours      demo-chat (nest-streaming): JSON envelopes, several per frame separated by '\n'
import WebSocket from 'ws';

/** Every benchmark message's content starts with this, then `<phase>|<seq>|<sent µs>|`. */
export const CONTENT_PREFIX = 'B|';
const MARK = `"content":"${CONTENT_PREFIX}`;

/** Monotonic microseconds (CLOCK_MONOTONIC: the same clock in every process of the machine). */
export const nowUs = () => Number(process.hrtime.bigint() / 1000n);

export function messageContent(phase, seq, padTo) {
  const head = `${CONTENT_PREFIX}${phase}|${seq}|${nowUs()}|`;
  return head.length >= padTo ? head : head + 'x'.repeat(padTo - head.length);
}

export function wsUrl(kind, port, token) {
  if (kind === 'ours') return `ws://127.0.0.1:${port}/ws?token=${encodeURIComponent(token)}`;
  if (kind === 'socketio') return `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;
  return `ws://127.0.0.1:${port}/`;
}

/** Parse a decimal integer that ends at the next '|'. Returns [value, indexAfterBar]. */
function readNum(text, i) {
  let v = 0;
  for (;;) {
    const c = text.charCodeAt(i++);
    if (c === 124 /* | */) return [v, i];
    if (c < 48 || c > 57) return [NaN, i];
    v = v * 10 + (c - 48);
  }
}

export class BenchClient {
  /**
   * @param kind 'ws-bare' | 'socketio' | 'ours'
   * @param onDelivery (phase, seq, latencyUs) => void, once per benchmark message received
   */
  constructor(kind, url, onDelivery) {
    this.kind = kind;
    this.url = url;
    this.onDelivery = onDelivery;
    this.ws = null;
    this.ready = false;
    this.pending = new Map(); // request id -> {resolve, reject}
    this.nextId = 1;
    this.errors = 0;
    this.errorCodes = {}; // error code -> count
    this.lastError = null;
    this.closeCode = null;
    this.closedAtUs = null;
    this.onLine = null; // optional (line) => void for every envelope that is not a benchmark message
    this.lastSeq = 0; // per-connection order check
    this.outOfOrder = 0;
    this.deliveryFrames = 0; // WebSocket frames that carried at least one benchmark message
  }

  /** Connect; resolves once the server said hello (`connected` / Socket.IO CONNECT). */
  open(timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false });
      this.ws = ws;
      const timer = setTimeout(() => {
        reject(new Error(`connect timeout ${this.url}`));
        ws.terminate();
      }, timeoutMs);
      this.onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.on('message', (data) => this.onFrame(data.toString()));
      ws.on('error', (err) => {
        clearTimeout(timer);
        if (!this.ready) reject(err);
        this.lastError = err.message;
      });
      ws.on('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
      });
      ws.on('close', (code) => {
        this.closeCode = code;
        this.closedAtUs = nowUs();
        for (const p of this.pending.values()) p.reject(new Error(`closed ${code}`));
        this.pending.clear();
      });
    });
  }

  onFrame(text) {
    // Deliveries: every occurrence of the content marker is one message (frames may batch several).
    let i = text.indexOf(MARK);
    if (i !== -1) {
      this.deliveryFrames++;
      const now = nowUs();
      while (i !== -1) {
        let j = i + MARK.length;
        let phase, seq, sent;
        [phase, j] = readNum(text, j);
        [seq, j] = readNum(text, j);
        [sent, j] = readNum(text, j);
        if (seq <= this.lastSeq && phase === this.lastPhase) this.outOfOrder++;
        this.lastSeq = seq;
        this.lastPhase = phase;
        this.onDelivery(phase, seq, now - sent);
        i = text.indexOf(MARK, j);
      }
      // A socket.io event frame holds exactly one packet; our frames may also carry acks.
      if (
        this.kind === 'socketio' ||
        (!this.onLine && !text.includes('"type":"ack"') && !text.includes('"type":"error"'))
      )
        return;
    }
    if (this.kind === 'socketio') this.onSocketIoPacket(text);
    else this.onJsonFrame(text);
  }

  onJsonFrame(text) {
    const lines = text.indexOf('\n') === -1 ? [text] : text.split('\n');
    for (const line of lines) {
      if (line.startsWith(`{"type":"message"`)) continue;
      this.onLine?.(line);
      if (!this.ready && line.startsWith('{"type":"connected"')) {
        this.ready = true;
        this.onReady?.();
        continue;
      }
      if (!line.startsWith('{"type":"ack"') && !line.startsWith('{"type":"error"')) continue;
      let env;
      try {
        env = JSON.parse(line);
      } catch {
        continue;
      }
      if (env.type === 'error') {
        this.errors++;
        this.errorCodes[env.data?.code] = (this.errorCodes[env.data?.code] ?? 0) + 1;
        this.lastError = `${env.data?.code}: ${env.data?.message}`;
      }
      const p = env.id !== undefined ? this.pending.get(env.id) : undefined;
      if (!p) continue;
      this.pending.delete(env.id);
      if (env.type === 'ack') p.resolve(env.data);
      else p.reject(new Error(this.lastError));
    }
  }

  onSocketIoPacket(text) {
    const t = text.charCodeAt(0);
    if (t === 50 /* '2' ping */) {
      this.ws.send('3');
      return;
    }
    if (t === 48 /* '0' open */) {
      this.ws.send('40');
      return;
    }
    if (t !== 52 /* '4' message */) return;
    const st = text.charCodeAt(1);
    if (st === 48 /* '0' CONNECT */) {
      this.ready = true;
      this.onReady?.();
    } else if (st === 51 /* '3' ACK */) {
      const b = text.indexOf('[');
      const id = Number(text.slice(2, b));
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        p.resolve(JSON.parse(text.slice(b))[0]);
      }
    } else if (st === 52 /* '4' CONNECT_ERROR */) {
      this.errors++;
      this.lastError = text;
    }
  }

  get isOpen() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Send a request; resolves with its ack (rejects at once when the socket is no longer open). */
  request(type, data) {
    if (!this.isOpen) return Promise.reject(new Error(`not open (closed ${this.closeCode})`));
    const id = this.nextId++;
    const wireId = this.kind === 'socketio' ? id : `r${id}`;
    const p = new Promise((resolve, reject) => this.pending.set(wireId, { resolve, reject }));
    this.sendRaw(type, data, wireId);
    return p;
  }

  /** Send a request without waiting (its ack is still matched and counted). */
  fire(type, data) {
    this.request(type, data).catch(() => {});
  }

  sendRaw(type, data, id) {
    if (this.kind === 'socketio') this.ws.send(`42${id}${JSON.stringify([type, data])}`);
    else this.ws.send(JSON.stringify({ type, id, data }));
  }

  join(roomId) {
    return this.request('join_room', { room_id: roomId });
  }

  subscribe(channel) {
    return this.request('subscribe', { channel });
  }

  /** Stop reading the socket (a stalled reader: the kernel buffers fill, then the server's). */
  pauseReading() {
    this.ws._socket.pause();
  }

  resumeReading() {
    this.ws._socket.resume();
  }

  /** This end's local TCP port. */
  get localPort() {
    return this.ws._socket?.localPort;
  }

  close() {
    try {
      this.ws?.close();
    } catch {
      /* already gone */
    }
  }
}
