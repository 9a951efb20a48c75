// connect: the cost of setting up connections. BENCH_CONNECT_CONNECTIONS
// connections open and each joins one room (rooms of BENCH_CONNECT_ROOM_SIZE
// members; 0 puts everyone in one room). Server CPU from the first upgrade to
// the last join's ack, per connection, split into the connects and the joins.
import { nowUs } from '../lib/client.mjs';
import { common, num } from '../lib/config.mjs';
import { cpuOf } from '../lib/phase.mjs';
import { threadCpu, threadSplit } from '../lib/proc.mjs';
import { f, mdTable, ratio, x } from '../lib/report.mjs';
import { runEach, log, sleep, startServer } from '../lib/servers.mjs';
import { createRoom, login, mintTokens, warmUp } from '../lib/setup.mjs';
import { Workers } from '../lib/workers.mjs';

const cfg = {
  connections: num('BENCH_CONNECT_CONNECTIONS', 1000),
  roomSize: num('BENCH_CONNECT_ROOM_SIZE', 10),
  clientProcs: common.clientProcs,
  concurrency: common.connectConcurrency,
  // Connections opened, joined and closed first: the measurement is of a server whose
  // connection and join paths are compiled (a fresh process spends about as much CPU
  // again in the JIT over its first thousand or so).
  warmConnections: num('BENCH_CONNECT_WARM', 2000),
  servers: common.servers,
};

async function one(kind) {
  const roomCount = cfg.roomSize > 0 ? Math.ceil(cfg.connections / cfg.roomSize) : 1;
  // The warm-up connections join rooms of their own (the measured rooms keep their size).
  const warmCount = cfg.warmConnections;
  const warmRoomCount = Math.ceil(warmCount / (cfg.roomSize || warmCount));
  const server = await startServer(kind, {
    name: `connect-${kind}`,
    profile: process.env.BENCH_CONNECT_PROFILE === '1',
    // One owner creates every room (the default max_rooms_per_user is 50).
    env:
      kind === 'ours'
        ? {
            FORGE_STREAMING_MAX_ROOMS_PER_USER: String(roomCount + warmRoomCount + 10),
            FORGE_STREAMING_MAX_ROOMS_OWNED_PER_USER: String(roomCount + warmRoomCount + 10),
          }
        : {},
  });
  log(`${server.label} (${kind}) on 127.0.0.1:${server.port}`);
  let workers = null;
  try {
    const n = cfg.connections;
    const owner = await login(kind, server.port, 'bench-owner');
    const rooms = [];
    for (let i = 0; i < roomCount; i++) rooms.push(await createRoom(kind, server.port, owner, `bench-${i}`));
    const warmRooms = [];
    for (let i = 0; i < warmRoomCount; i++)
      warmRooms.push(await createRoom(kind, server.port, owner, `bench-warm-${i}`));
    await warmUp(kind, server.port, warmCount, cfg.concurrency, warmRooms);
    const tokens =
      kind === 'ours' ? await mintTokens(Array.from({ length: n }, (_v, i) => `bench-${i}`)) : null;
    workers = new Workers(cfg.clientProcs);
    // Past the clean-up of the warm-up connections (on ours, presence goes offline 1 s after a close).
    await sleep(1500);
    const th0 = threadCpu(server.pid);
    const cpu0 = cpuOf([server.pid]);
    const t0 = nowUs();
    const conn = await workers.connect({ kind, port: server.port, n, tokens, concurrency: cfg.concurrency });
    const cpu1 = cpuOf([server.pid]);
    const th1 = threadCpu(server.pid);
    const t1 = nowUs();
    // Connection i joins room i / roomSize (consecutive connections share a room).
    const targets = Array.from({ length: n }, (_v, i) => rooms[Math.floor(i / (cfg.roomSize || n))]);
    const join = await workers.join({ request: 'join_room', targets, n });
    const cpu2 = cpuOf([server.pid]);
    const th2 = threadCpu(server.pid);
    const connectThreads = threadSplit(server.pid, th0, th1);
    const joinThreads = threadSplit(server.pid, th1, th2);
    const t2 = nowUs();
    if (process.env.BENCH_CONNECT_PROFILE === '1')
      log(`  window us: connect ${t0}..${t1}, join ${t1}..${t2}`);
    const r = {
      kind,
      label: server.label,
      command: server.command,
      connected: conn.connected,
      failed: conn.failed,
      first_error: conn.firstError,
      joined: join.ok,
      join_failed: join.failed,
      join_first_error: join.firstError,
      rooms: roomCount,
      wall_s: (t2 - t0) / 1e6,
      connect_wall_s: (t1 - t0) / 1e6,
      join_wall_s: (t2 - t1) / 1e6,
      cpu_ms: (cpu2.total - cpu0.total) / 1000,
      cpu_ms_per_connection: conn.connected ? (cpu2.total - cpu0.total) / 1000 / conn.connected : null,
      connect_cpu_ms_per_connection: conn.connected
        ? (cpu1.total - cpu0.total) / 1000 / conn.connected
        : null,
      join_cpu_ms_per_connection: join.ok ? (cpu2.total - cpu1.total) / 1000 / join.ok : null,
      // user / system split (µs per connection): system time is the kernel's (accept, TCP, writes)
      connect_user_us: conn.connected ? (cpu1.user - cpu0.user) / conn.connected : null,
      connect_system_us: conn.connected ? (cpu1.system - cpu0.system) / conn.connected : null,
      join_user_us: join.ok ? (cpu2.user - cpu1.user) / join.ok : null,
      join_system_us: join.ok ? (cpu2.system - cpu1.system) / join.ok : null,
      // main thread / V8's helper threads (JIT, parallel GC), µs per connection
      connect_main_us: conn.connected ? connectThreads.main / conn.connected : null,
      connect_helpers_us: conn.connected ? connectThreads.helpers / conn.connected : null,
      join_main_us: join.ok ? joinThreads.main / join.ok : null,
      join_helpers_us: join.ok ? joinThreads.helpers / join.ok : null,
    };
    log(
      `  ${r.connected} connected (${r.failed} failed) in ${f(r.connect_wall_s)} s, ${r.joined} joined in ${f(r.join_wall_s)} s: ` +
        `${f(r.cpu_ms_per_connection, 3)} ms server CPU per connection (connect ${f(r.connect_cpu_ms_per_connection, 3)}, join ${f(r.join_cpu_ms_per_connection, 3)}); ` +
        `user/system µs: connect ${f(r.connect_user_us, 0)}/${f(r.connect_system_us, 0)}, join ${f(r.join_user_us, 0)}/${f(r.join_system_us, 0)}; ` +
        `main thread/helper threads µs: connect ${f(r.connect_main_us, 0)}/${f(r.connect_helpers_us, 0)}, join ${f(r.join_main_us, 0)}/${f(r.join_helpers_us, 0)}`,
    );
    return r;
  } finally {
    await workers?.close();
    await server.stop();
  }
}

const run = () => runEach(cfg, one);

function tableRows(data) {
  const by = Object.fromEntries(data.results.filter((r) => !r.error).map((r) => [r.kind, r]));
  const head = [
    'server',
    'CPU ms / connection',
    'connect',
    'join',
    'vs ws',
    'vs socket.io',
    'connected',
    'joined',
    'wall s',
  ];
  const rows = data.results.map((r) =>
    r.error
      ? [r.label, `failed: ${r.error}`, '', '', '', '', '', '', '']
      : [
          r.label,
          f(r.cpu_ms_per_connection, 3),
          f(r.connect_cpu_ms_per_connection, 3),
          f(r.join_cpu_ms_per_connection, 3),
          r.kind === 'ws-bare'
            ? '1'
            : x(ratio(r.cpu_ms_per_connection, by['ws-bare']?.cpu_ms_per_connection)),
          r.kind === 'socketio' ? '1' : x(ratio(r.cpu_ms_per_connection, by.socketio?.cpu_ms_per_connection)),
          `${r.connected}${r.failed ? ` (${r.failed} failed: ${r.first_error})` : ''}`,
          `${r.joined}${r.join_failed ? ` (${r.join_failed} failed: ${r.join_first_error})` : ''}`,
          f(r.wall_s),
        ],
  );
  return [head, ...rows];
}

function render(data) {
  const c = data.config;
  return [
    `${c.connections} connections (${c.clientProcs} client processes, ${c.concurrency} attempts in flight each) open, then each joins one room ` +
      `(${c.roomSize > 0 ? `${Math.ceil(c.connections / c.roomSize)} rooms of ${c.roomSize}` : 'all in one room'}; on the demo the rooms exist beforehand, ` +
      `and every connection has its own user and JWT; their owner may own that many rooms). ${c.warmConnections} connections were opened, joined rooms of their own and closed first (warm-up, \`BENCH_CONNECT_WARM\`: the JIT has compiled both paths). ` +
      'Server CPU (utime + stime) from the first upgrade to the last join ack, divided by the connections.',
    '',
    mdTable(tableRows(data)),
    '',
    ...data.results
      .filter((r) => !r.error)
      .map(
        (r) =>
          `- **${r.label}**: \`${r.command}\`` +
          (r.connect_main_us == null
            ? ''
            : `; µs per connection, connect / join: main thread ${f(r.connect_main_us, 0)} / ${f(r.join_main_us, 0)}, ` +
              `V8 helper threads (JIT, GC) ${f(r.connect_helpers_us, 0)} / ${f(r.join_helpers_us, 0)}, ` +
              `of all that kernel (system) ${f(r.connect_system_us, 0)} / ${f(r.join_system_us, 0)}`),
      ),
    '',
  ];
}

function targets(data) {
  const by = Object.fromEntries(data.results.filter((r) => !r.error).map((r) => [r.kind, r]));
  const r = ratio(by.ours?.cpu_ms_per_connection, by.socketio?.cpu_ms_per_connection);
  return [
    {
      what: 'connect + join one room: server CPU ms each',
      ws: f(by['ws-bare']?.cpu_ms_per_connection, 2),
      socketio: f(by.socketio?.cpu_ms_per_connection, 2),
      ours: f(by.ours?.cpu_ms_per_connection, 2),
      vs: r === null ? 'n/a' : `${r.toFixed(2)}× socket.io`,
      target: '≤ 0.5× socket.io',
      met: r === null ? null : r <= 0.5,
    },
  ];
}

export default {
  id: 'connect',
  title: `Connection set-up: connect + join one room (${cfg.connections} connections)`,
  config: cfg,
  run,
  render,
  targets,
  summary: (data) => ({ rows: tableRows(data), notes: [] }),
};
