// Setting up a scenario's connections the same way on every server: the
// publishing connection, the receivers in the client processes, and the room
// or channel they share.
import { SignJWT } from 'jose';
import { BenchClient, wsUrl } from './client.mjs';
import { common } from './config.mjs';
import { JWT_SECRET, log } from './servers.mjs';
import { Workers } from './workers.mjs';

export async function httpJson(port, method, urlPath, body, token) {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(30000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${urlPath}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

/**
 * Tokens for the receiving users, signed here with the server's JWT_SECRET and the
 * claims POST /api/auth/login issues (sub, sid, name, iat, exp): thousands of logins
 * through the server would cost it CPU and leave garbage in its heap.
 */
export async function mintTokens(names) {
  const key = new TextEncoder().encode(JWT_SECRET);
  return Promise.all(
    names.map((name, i) =>
      new SignJWT({ sid: `bench${i}`, name })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(name)
        .setIssuedAt()
        .setExpirationTime('24h')
        .sign(key),
    ),
  );
}

/** The demo's login endpoint (the way a user gets a token); other servers need none. */
export async function login(kind, port, username) {
  if (kind !== 'ours') return null;
  return (await httpJson(port, 'POST', '/api/auth/login', { username })).token;
}

/** Open one connection held by the orchestrator. */
export async function openClient(kind, port, token, onDelivery = () => {}) {
  const c = new BenchClient(kind, wsUrl(kind, port, token), onDelivery);
  await c.open();
  return c;
}

/** A room every server knows: the demo needs it created (the creator is its owner and a member). */
export async function createRoom(kind, port, token, name) {
  if (kind !== 'ours') return name;
  return (await httpJson(port, 'POST', '/api/rooms', { name }, token)).id;
}

/** How a connection joins a target and how a publisher sends to it: a room or a channel. */
export function route(via, target) {
  return via === 'channel'
    ? {
        request: 'subscribe',
        join: (c) => c.subscribe(target),
        publish: (c, content) => c.request('publish', { channel: target, data: { content } }),
      }
    : {
        request: 'join_room',
        join: (c) => c.join(target),
        publish: (c, content) => c.request('send_message', { room_id: target, content }),
      };
}

/**
 * One publisher and `n` receivers sharing one room or channel (`via`), the receivers spread
 * over `procs` client processes; worker i connects to `receiverPort(i)` (several nodes).
 * Returns {sender, workers, publish, receivers, target, connect, join}; close with `closeFanout`.
 */
export async function openFanout({ kind, senderPort, receiverPort = () => senderPort, n, procs, via }) {
  const senderToken = await login(kind, senderPort, 'bench-sender');
  const target =
    via === 'channel' ? 'bench.fanout' : await createRoom(kind, senderPort, senderToken, 'bench');
  const r = route(via, target);
  const session = { sender: null, workers: null, target, via };
  try {
    session.sender = await openClient(kind, senderPort, senderToken);
    await r.join(session.sender);
    const tokens =
      kind === 'ours' ? await mintTokens(Array.from({ length: n }, (_v, i) => `bench-${i}`)) : null;
    session.workers = new Workers(Math.min(procs, Math.max(1, n)));
    const conn = await session.workers.connect({
      kind,
      port: receiverPort,
      n,
      tokens,
      concurrency: common.connectConcurrency,
    });
    log(
      `  ${conn.connected} connections open in ${conn.ms} ms` +
        (conn.failed ? `, ${conn.failed} failed: ${conn.firstError}` : ''),
    );
    if (conn.connected === 0) throw new Error(`no connection could be opened: ${conn.firstError}`);
    const join = await session.workers.join({ request: r.request, targets: [target], n });
    log(
      `  ${join.ok} ${via === 'channel' ? 'subscribed' : 'joined'} in ${join.ms} ms` +
        (join.failed ? `, ${join.failed} failed: ${join.firstError}` : ''),
    );
    Object.assign(session, {
      publish: (content) => r.publish(session.sender, content),
      receivers: join.ok,
      connect: conn,
      join,
    });
    return session;
  } catch (err) {
    await closeFanout(session);
    throw err;
  }
}

export async function closeFanout(session) {
  session?.sender?.close();
  await session?.workers?.close();
}

/**
 * Open and close `count` connections: one-time costs of the first connections (lazy-loaded
 * code, JIT, the libuv thread pool that WebCrypto JWT checks start, malloc arenas) are then
 * paid before anything is measured.
 */
/**
 * Open `count` connections and close them again, so that the server's
 * connection path is compiled before a measurement; with `joinRooms`, each
 * also joins one of those rooms first (round robin), warming the join path.
 */
export async function warmUp(kind, port, count, concurrency, joinRooms = []) {
  if (count <= 0) return;
  const tokens =
    kind === 'ours' ? await mintTokens(Array.from({ length: count }, (_v, i) => `bench-warm-${i}`)) : null;
  const warm = Array.from(
    { length: count },
    (_v, i) => new BenchClient(kind, wsUrl(kind, port, tokens?.[i]), () => {}),
  );
  for (let i = 0; i < warm.length; i += concurrency)
    await Promise.all(
      warm.slice(i, i + concurrency).map(async (c, k) => {
        await c.open();
        if (joinRooms.length > 0) await c.join(joinRooms[(i + k) % joinRooms.length]);
      }),
    );
  await new Promise((r) => setTimeout(r, 200));
  for (const c of warm) c.close();
  await new Promise((r) => setTimeout(r, 500));
}
