// A client process of bench/codec.mjs: holds receiving connections of either
// codec (JSON text, or the nest-streaming.msgpack subprotocol), and counts per
// codec the benchmark messages they get, the frames that carried them and
// their bytes. Both codecs are read the same cheap way: the frame's bytes are
// scanned for the phase's marker (strings are UTF-8 in both encodings), never
// decoded, so the client side costs the same whatever the codec.
// Driven by bench/codec.mjs over the IPC channel.
import { pack, unpackMultiple } from 'msgpackr';
import WebSocket from 'ws';

const MSGPACK = 'nest-streaming.msgpack';
/** Bytes of a server-to-client WebSocket frame header (no mask) for a payload of `n` bytes. */
const headerBytes = (n) => (n < 126 ? 2 : n < 65536 ? 4 : 10);

let conns = [];
let phase = null;

class Receiver {
  constructor(url, codec) {
    this.url = url;
    this.codec = codec;
    this.ws = null;
    this.pending = new Map();
    this.nextId = 1;
    this.got = 0;
    this.closeCode = null;
  }

  /** Connect (the socket is made here, listeners first); resolves on the first frame (`connected`). */
  open(timeoutMs = 20000) {
    this.ws = new WebSocket(this.url, this.codec === 'msgpack' ? [MSGPACK] : [], {
      perMessageDeflate: false,
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connect timeout')), timeoutMs);
      this.ws.on('unexpected-response', (_req, res) =>
        reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)),
      );
      this.ws.on('error', (err) => reject(err));
      this.ws.on('close', (code) => {
        this.closeCode = code;
        for (const p of this.pending.values()) p.reject(new Error(`closed ${code}`));
      });
      this.ws.on('message', (data, isBinary) => {
        if (!this.ready) {
          this.ready = true;
          if (isBinary !== (this.codec === 'msgpack'))
            reject(new Error(`${this.codec} connection got a wrong frame`));
          clearTimeout(timer);
          resolve();
          return;
        }
        this.onFrame(data, isBinary);
      });
    });
  }

  onFrame(buf, isBinary) {
    const p = phase;
    if (p && this.scan(buf, p)) return;
    if (this.pending.size === 0) return;
    // Set-up only (acks of join_room): decode.
    const envs = isBinary
      ? unpackMultiple(buf)
      : buf
          .toString('utf8')
          .split('\n')
          .map((l) => JSON.parse(l));
    for (const env of envs) {
      const w = env.id !== undefined && this.pending.get(env.id);
      if (!w) continue;
      this.pending.delete(env.id);
      if (env.type === 'ack') w.resolve(env.data);
      else w.reject(new Error(`${env.data?.code}: ${env.data?.message}`));
    }
  }

  /** Count the phase's messages in a frame; true when it held any. */
  scan(buf, p) {
    let i = buf.indexOf(p.marker);
    if (i === -1) return false;
    const s = p.byCodec[this.codec];
    s.frames++;
    s.payloadBytes += buf.length;
    s.headerBytes += headerBytes(buf.length);
    let n = 0;
    while (i !== -1) {
      let j = i + p.marker.length;
      let seq = 0;
      for (let c = buf[j]; c >= 48 && c <= 57; c = buf[++j]) seq = seq * 10 + (c - 48);
      if (seq >= 1 && seq <= p.m) n++;
      i = buf.indexOf(p.marker, j);
    }
    if (n === 1 && s.oneEnvelopeBytes === 0) s.oneEnvelopeBytes = buf.length;
    s.deliveries += n;
    this.got += n;
    if (this.got >= p.m && this.got - n < p.m && ++p.complete === conns.length)
      process.send({ op: 'complete', id: p.id });
    return true;
  }

  request(type, data) {
    const id = `r${this.nextId++}`;
    const env = { type, id, data };
    const done = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.ws.send(this.codec === 'msgpack' ? pack(env) : JSON.stringify(env));
    return done;
  }
}

async function inBatches(items, size, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += size)
    out.push(...(await Promise.allSettled(items.slice(i, i + size).map(fn))));
  return out;
}

const emptyStats = () => ({ deliveries: 0, frames: 0, payloadBytes: 0, headerBytes: 0, oneEnvelopeBytes: 0 });

process.on('message', async (cmd) => {
  try {
    if (cmd.op === 'connect') {
      const fresh = cmd.codecs.map(
        (codec, i) =>
          new Receiver(`ws://127.0.0.1:${cmd.port}/ws?token=${encodeURIComponent(cmd.tokens[i])}`, codec),
      );
      const res = await inBatches(fresh, 10, (c) => c.open());
      conns = fresh.filter((_c, i) => res[i].status === 'fulfilled');
      const failed = res.filter((r) => r.status === 'rejected');
      process.send({
        op: 'connected',
        ok: conns.length,
        failed: failed.length,
        firstError: failed[0]?.reason?.message,
      });
    } else if (cmd.op === 'join') {
      const res = await inBatches(conns, 50, (c) => c.request('join_room', { room_id: cmd.roomId }));
      const failed = res.filter((r) => r.status === 'rejected');
      process.send({ op: 'joined', ok: res.length - failed.length, firstError: failed[0]?.reason?.message });
    } else if (cmd.op === 'phase') {
      for (const c of conns) c.got = 0;
      phase = {
        id: cmd.id,
        marker: Buffer.from(cmd.marker),
        m: cmd.m,
        complete: 0,
        byCodec: { json: emptyStats(), msgpack: emptyStats() },
      };
      process.send({ op: 'phase-ready' });
    } else if (cmd.op === 'collect') {
      process.send({
        op: 'stats',
        byCodec: phase?.byCodec,
        complete: phase?.complete ?? 0,
        closed: conns.filter((c) => c.closeCode !== null).map((c) => c.closeCode),
      });
    } else if (cmd.op === 'close') {
      for (const c of conns) c.ws?.close();
      setTimeout(() => process.exit(0), 300);
    }
  } catch (err) {
    process.send({ op: 'fatal', message: String(err?.stack ?? err) });
  }
});

// Never outlive the orchestrator.
process.on('disconnect', () => process.exit(0));
process.send({ op: 'hello' });
