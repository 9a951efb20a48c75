// A client process of bench/idle-connections.mjs: opens its share of idle
// WebSocket connections (each from one of several loopback source addresses,
// so that no single address runs out of ephemeral ports), joins each to a
// room, then only answers pings (the `ws` client does that by itself) and
// counts the room messages it receives. Driven over the IPC channel.
import { SignJWT } from 'jose';
import WebSocket from 'ws';

/** One open connection: its socket and how many `message` envelopes it got. */
let conns = [];
let messages = 0;
let closedUnexpectedly = 0;
const closeCodes = {};

const MESSAGE_MARK = '"type":"message"';

async function mint(secret, name) {
  return new SignJWT({ sid: `idle-${name}`, name })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(name)
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(new TextEncoder().encode(secret));
}

/** Open one connection from `localAddress`; resolves once `connected` arrived. */
function open(url, localAddress, deflate, timeoutMs) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: deflate, localAddress });
    const c = { ws, pending: new Map(), nextId: 1, open: false };
    const timer = setTimeout(() => {
      reject(new Error(`connect timeout from ${localAddress}`));
      ws.terminate();
    }, timeoutMs);
    ws.on('message', (data) => {
      const text = data.toString();
      if (!c.open) {
        if (text.includes('"type":"connected"')) {
          c.open = true;
          clearTimeout(timer);
          resolve(c);
        }
        return;
      }
      if (text.includes(MESSAGE_MARK)) {
        let at = text.indexOf(MESSAGE_MARK);
        while (at >= 0) {
          messages++;
          at = text.indexOf(MESSAGE_MARK, at + MESSAGE_MARK.length);
        }
      }
      if (c.pending.size === 0) return;
      for (const line of text.split('\n')) {
        const m = /^\{"type":"(ack|error)","id":"(\d+)"/.exec(line);
        if (!m) continue;
        const p = c.pending.get(m[2]);
        if (!p) continue;
        c.pending.delete(m[2]);
        if (m[1] === 'error') p.reject(new Error(line.slice(0, 200)));
        else p.resolve();
      }
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      if (!c.open) reject(err);
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      if (!c.open) return reject(new Error(`closed ${code} before connected`));
      if (!c.closing) {
        closedUnexpectedly++;
        closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      }
      for (const p of c.pending.values()) p.reject(new Error(`closed ${code}`));
      c.pending.clear();
    });
  });
}

function request(c, type, data, timeoutMs = 60000) {
  if (c.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error(`${type}: connection closed`));
  const id = String(c.nextId++);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      c.pending.delete(id);
      reject(new Error(`${type}: no answer`));
    }, timeoutMs);
    c.pending.set(id, {
      resolve: () => {
        clearTimeout(t);
        resolve();
      },
      reject: (e) => {
        clearTimeout(t);
        reject(e);
      },
    });
    c.ws.send(JSON.stringify({ type, id, data }));
  });
}

/** Run `fn` over `items` with at most `limit` in flight; the settled results in order. */
async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { ok: true, value: await fn(items[i], i) };
      } catch (err) {
        out[i] = { ok: false, error: String(err?.message ?? err) };
      }
    }
  });
  await Promise.all(lanes);
  return out;
}

process.on('message', async (cmd) => {
  try {
    if (cmd.op === 'connect') {
      // Global indexes offset .. offset+count-1; user idle-<g>; source 127.0.0.<2 + g % addrs>.
      const { port, offset, count, secret, addrs, concurrency, deflate } = cmd;
      const t0 = Date.now();
      const idx = Array.from({ length: count }, (_v, i) => offset + i);
      const tokens = await Promise.all(idx.map((g) => mint(secret, `idle-${g}`)));
      const minted = Date.now();
      const res = await pool(idx, concurrency, (g, i) =>
        open(
          `ws://127.0.0.1:${port}/ws?token=${encodeURIComponent(tokens[i])}`,
          `127.0.0.${2 + (g % addrs)}`,
          deflate,
          60000,
        ),
      );
      conns = res.filter((r) => r.ok).map((r) => r.value);
      const failed = res.filter((r) => !r.ok);
      process.send({
        op: 'connected',
        ok: conns.length,
        failed: failed.length,
        firstError: failed[0]?.error,
        mintMs: minted - t0,
        connectMs: Date.now() - minted,
      });
    } else if (cmd.op === 'join') {
      const { rooms, offset, concurrency } = cmd;
      const res = await pool(conns, concurrency, (c, i) =>
        request(c, 'join_room', { room_id: rooms[(offset + i) % rooms.length] }),
      );
      const failed = res.filter((r) => !r.ok);
      process.send({
        op: 'joined',
        ok: res.length - failed.length,
        failed: failed.length,
        firstError: failed[0]?.error,
      });
    } else if (cmd.op === 'count') {
      process.send({
        op: 'counted',
        open: conns.filter((c) => c.ws.readyState === WebSocket.OPEN).length,
        messages,
        closedUnexpectedly,
        closeCodes,
      });
    } else if (cmd.op === 'close') {
      for (const c of conns) {
        c.closing = true;
        c.ws.terminate();
      }
      setTimeout(() => process.exit(0), 200);
    }
  } catch (err) {
    process.send({ op: 'fatal', message: String(err?.stack ?? err) });
  }
});

process.send({ op: 'hello' });
