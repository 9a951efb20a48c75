#!/usr/bin/env node
// Idle connections on one node (issue 16): how much memory and CPU a node spends
// per connection that does nothing, and how fast it accepts them.
//
//   node bench/idle-connections.mjs                                  # smoke: 2000 connections, the default run
//   BENCH_IDLE_CONNECTIONS=19000 BENCH_IDLE_SECONDS=30 \
//     BENCH_IDLE_RUNS=default,quiet,ping,presence,deflate node bench/idle-connections.mjs
//
// Each run starts a fresh demo server (the "ours" server of bench/run.mjs: in-memory
// store, rate limits raised; BENCH_OURS_SCRIPT picks another build), warms it up,
// creates the rooms, then opens BENCH_IDLE_CONNECTIONS WebSocket connections from
// BENCH_IDLE_PROCS client processes (lib/idle-worker.mjs), each from one of
// BENCH_IDLE_SOURCE_ADDRS loopback addresses (127.0.0.2, 127.0.0.3, ...: one address
// would run out of ephemeral ports), each authenticated with its own JWT and joined to
// one of BENCH_IDLE_ROOMS rooms. Then nothing happens for BENCH_IDLE_SECONDS, and one
// message of BENCH_IDLE_MESSAGE_BYTES goes to every room (0: none).
//
// Reported per run: server RSS and heap per connection (after minus before, two GCs
// each), connections accepted per second and server CPU per connect and per join, the
// server's CPU per second while idle (utime+stime from /proc/<pid>/stat) with its worst
// second and the event loop's longest delay (the demo's /metrics), and memory after
// the room messages. The runs (BENCH_IDLE_RUNS, in this order):
//   default   the defaults: ping_interval 30 s, presence_cleanup 60 s
//   quiet     pings and presence sweeps off (1 day): the idle baseline
//   ping      ping_interval 2 s, presence sweeps off: CPU per ping = (ping - quiet) / (N / 2 s)
//   presence  presence_timeout 3 s, presence_cleanup 1 s, node_timeout 1 s, pings off:
//             everyone goes away, then each user's record is refreshed every 2 s
//   deflate   the defaults with permessage-deflate on (bench/servers/ours-deflate.mjs)
//   base-*    default, quiet, ping or presence on BENCH_IDLE_BASE_SCRIPT (an older build,
//             e.g. the commit before the change), for before/after figures
// Every run has auth.validate_on_message on (BENCH_IDLE_VALIDATE_ON_MESSAGE=0: off), so
// token expiry tracking is part of what is measured.
//
// Writes bench/results/idle-connections-<N>.json (BENCH_IDLE_OUT overrides; BENCH_IDLE_MERGE=1 keeps the
// file's other runs) and prints a table.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { BenchClient, wsUrl } from './lib/client.mjs';
import { common, num, list } from './lib/config.mjs';
import { cpuTimeUs, machineBusyUs } from './lib/proc.mjs';
import { machine, printTable } from './lib/report.mjs';
import { JWT_SECRET, SERVERS, benchDir, log, resultsDir, root, sleep, startServer } from './lib/servers.mjs';
import { httpJson, warmUp } from './lib/setup.mjs';
import { stopWorkers } from './lib/workers.mjs';

const N = num('BENCH_IDLE_CONNECTIONS', 2000);
const cfg = {
  connections: N,
  rooms: Math.max(1, num('BENCH_IDLE_ROOMS', Math.ceil(N / 19))),
  procs: Math.max(1, num('BENCH_IDLE_PROCS', 4)),
  sourceAddrs: Math.max(1, Math.min(250, num('BENCH_IDLE_SOURCE_ADDRS', 4))),
  concurrency: Math.max(1, num('BENCH_IDLE_CONCURRENCY', 25)),
  idleSeconds: num('BENCH_IDLE_SECONDS', 10),
  settleSeconds: num('BENCH_IDLE_SETTLE_SECONDS', 5),
  messageBytes: num('BENCH_IDLE_MESSAGE_BYTES', 2048),
  warm: num('BENCH_WARM_CONNECTIONS', 200),
  validateOnMessage: process.env.BENCH_IDLE_VALIDATE_ON_MESSAGE !== '0',
  runs: list('BENCH_IDLE_RUNS', 'default'),
  oursScript: common.oursScript,
  baseScript: process.env.BENCH_IDLE_BASE_SCRIPT || null,
};
// One file per size, so that a smoke run does not replace the full-size figures.
const outFile = process.env.BENCH_IDLE_OUT || path.join(resultsDir, `idle-connections-${N}.json`);

const OFF = '86400'; // a day: never within a run
const QUIET = { FORGE_STREAMING_PING_INTERVAL: OFF, FORGE_STREAMING_PRESENCE_CLEANUP: OFF };
const PRESENCE = {
  FORGE_STREAMING_PING_INTERVAL: OFF,
  FORGE_STREAMING_PRESENCE_TIMEOUT: '3',
  FORGE_STREAMING_PRESENCE_CLEANUP: '1',
  FORGE_STREAMING_NODE_TIMEOUT: '1',
  FORGE_STREAMING_HEARTBEAT_INTERVAL: '1',
};
const RUNS = {
  default: { what: 'defaults: ping_interval 30 s, presence_cleanup 60 s', env: {} },
  quiet: { what: 'pings and presence sweeps off (1 day)', env: QUIET },
  ping: {
    what: 'ping_interval 2 s, presence sweeps off',
    env: { FORGE_STREAMING_PING_INTERVAL: '2', FORGE_STREAMING_PRESENCE_CLEANUP: OFF },
    pingsPerSecond: (n) => n / 2,
  },
  presence: {
    what: 'presence_timeout 3 s, presence_cleanup 1 s, node_timeout 1 s (records refreshed every 2 s), pings off',
    env: PRESENCE,
    // Everyone goes away first (one presence change each, sent to their room): over before the window.
    settleSeconds: 20,
  },
  deflate: {
    what: 'defaults, permessage-deflate on',
    env: {},
    script: 'bench/servers/ours-deflate.mjs',
    deflate: true,
  },
};
for (const base of ['default', 'quiet', 'ping', 'presence'])
  RUNS[`base-${base}`] = { ...RUNS[base], what: `${RUNS[base].what}; BENCH_IDLE_BASE_SCRIPT`, base: true };

const round = (x, d = 0) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);
const kb = (bytes) => round(bytes / 1024, 2);

/** Client processes alive; killed if this process exits early (lib/servers.mjs exits on SIGINT/SIGTERM). */
const liveWorkers = new Set();
process.once('exit', () => {
  for (const w of liveWorkers) w.kill('SIGKILL');
});

/** The client processes. */
class IdleWorkers {
  constructor(count) {
    this.procs = Array.from({ length: count }, () => {
      const w = fork(path.join(benchDir, 'lib/idle-worker.mjs'), [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      liveWorkers.add(w);
      w.once('exit', () => liveWorkers.delete(w));
      return w;
    });
  }

  get pids() {
    return this.procs.map((p) => p.pid);
  }

  share(i) {
    const k = this.procs.length;
    const count = Math.floor(N / k) + (i < N % k ? 1 : 0);
    let offset = 0;
    for (let j = 0; j < i; j++) offset += Math.floor(N / k) + (j < N % k ? 1 : 0);
    return { count, offset };
  }

  all(cmd, replyOp, timeoutMs = 600000) {
    return Promise.all(
      this.procs.map(
        (w, i) =>
          new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`client ${i} did not answer ${replyOp}`)), timeoutMs);
            const on = (m) => {
              if (m.op === 'fatal') {
                clearTimeout(t);
                w.off('message', on);
                reject(new Error(`client ${i}: ${m.message}`));
              } else if (m.op === replyOp) {
                clearTimeout(t);
                w.off('message', on);
                resolve(m);
              }
            };
            w.on('message', on);
            w.send(typeof cmd === 'function' ? cmd(i) : cmd);
          }),
      ),
    );
  }

  async close() {
    await stopWorkers(this.procs);
  }
}

/** Event loop delay since the last scrape (prom-client resets its histogram at each collect). */
async function loopDelay(port) {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const read = (name) => {
      const m = new RegExp(`^streaming_process_nodejs_eventloop_lag_${name}_seconds\\s+(\\S+)`, 'm').exec(
        text,
      );
      return m ? Number(m[1]) * 1000 : null;
    };
    return { max_ms: round(read('max'), 1), p99_ms: round(read('p99'), 1) };
  } catch {
    return { max_ms: null, p99_ms: null };
  }
}

const cpuOf = (pids) => pids.reduce((a, p) => a + (p ? safeCpu(p) : 0), 0);
function safeCpu(pid) {
  try {
    return cpuTimeUs(pid).total;
  } catch {
    return 0;
  }
}

async function mintOwner() {
  return new SignJWT({ sid: 'idle-owner', name: 'idle-owner' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('idle-owner')
    .setIssuedAt()
    .setExpirationTime('24h')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

async function oneRun(name) {
  const run = RUNS[name];
  if (!run) throw new Error(`unknown run "${name}" (known: ${Object.keys(RUNS).join(', ')})`);
  if (run.base && !cfg.baseScript) throw new Error(`run ${name} needs BENCH_IDLE_BASE_SCRIPT`);
  const kind = `idle-${name}`;
  SERVERS[kind] = {
    label: `nest-streaming (${name})`,
    script: run.base ? cfg.baseScript : (run.script ?? cfg.oursScript),
    env: {
      ...SERVERS.ours.env,
      FORGE_STREAMING_MAX_ROOMS_PER_USER: '1000000',
      FORGE_STREAMING_MAX_ROOMS_OWNED_PER_USER: '1000000',
      FORGE_STREAMING_AUTH_VALIDATE_ON_MESSAGE: cfg.validateOnMessage ? 'true' : 'false',
      ...run.env,
    },
  };
  const loadavg = os.loadavg();
  log(`=== ${name}: ${run.what} (load ${loadavg.map((l) => l.toFixed(2)).join(' ')})`);
  const server = await startServer(kind, { name: `idle-${name}` });
  const workers = new IdleWorkers(Math.min(cfg.procs, N));
  let owner = null;
  try {
    const port = server.port;
    await warmUp('ours', port, cfg.warm, 10);
    // The rooms, created by one owner (a member of each) before anyone else connects.
    const ownerToken = await mintOwner();
    const rooms = [];
    for (let i = 0; i < cfg.rooms; i += 20) {
      const batch = Array.from({ length: Math.min(20, cfg.rooms - i) }, (_v, k) => `idle-${i + k}`);
      const made = await Promise.all(
        batch.map((n) => httpJson(port, 'POST', '/api/rooms', { name: n }, ownerToken)),
      );
      rooms.push(...made.map((r) => r.id));
    }
    await sleep(1000);
    const before = await server.memory();
    log(`  ${rooms.length} rooms; before: RSS ${(before.rss / 2 ** 20).toFixed(1)} MiB`);

    // Connect.
    let cpu0 = safeCpu(server.pid);
    const t0 = Date.now();
    const conn = await workers.all(
      (i) => ({
        op: 'connect',
        port,
        secret: JWT_SECRET,
        addrs: cfg.sourceAddrs,
        concurrency: cfg.concurrency,
        deflate: !!run.deflate,
        ...workers.share(i),
      }),
      'connected',
    );
    const connectWallMs = Date.now() - t0;
    const connectCpuUs = safeCpu(server.pid) - cpu0;
    const connected = conn.reduce((a, c) => a + c.ok, 0);
    const failed = conn.reduce((a, c) => a + c.failed, 0);
    // The clients mint their tokens first, in parallel: the accept time is the slowest client's.
    const connectMs = Math.max(...conn.map((c) => c.connectMs));
    log(
      `  ${connected} connected in ${connectMs} ms (${round((connected / connectMs) * 1000)}/s)` +
        (failed ? `, ${failed} failed: ${conn.find((c) => c.firstError)?.firstError}` : ''),
    );
    if (connected === 0) throw new Error('no connection opened');

    // Join.
    cpu0 = safeCpu(server.pid);
    const t1 = Date.now();
    const joinReplies = await workers.all(
      (i) => ({ op: 'join', rooms, offset: workers.share(i).offset, concurrency: cfg.concurrency }),
      'joined',
    );
    const joinMs = Date.now() - t1;
    const joinCpuUs = safeCpu(server.pid) - cpu0;
    const joined = joinReplies.reduce((a, c) => a + c.ok, 0);
    const joinFailed = joinReplies.reduce((a, c) => a + c.failed, 0);
    log(
      `  ${joined} joined in ${joinMs} ms` +
        (joinFailed ? `, ${joinFailed} failed: ${joinReplies.find((c) => c.firstError)?.firstError}` : ''),
    );

    await sleep(Math.max(cfg.settleSeconds, run.settleSeconds ?? 0) * 1000);
    const after = await server.memory();
    const perConn = (k) => (after[k] - before[k]) / connected;
    log(`  after: RSS ${(after.rss / 2 ** 20).toFixed(1)} MiB, ${kb(perConn('rss'))} KiB per connection`);

    // Idle.
    await loopDelay(port); // resets the event loop histogram
    const pids = workers.pids;
    let prev = safeCpu(server.pid);
    const s0 = prev;
    const m0 = machineBusyUs();
    const w0 = cpuOf(pids);
    let worst = 0;
    const tIdle = Date.now();
    for (let s = 0; s < cfg.idleSeconds; s++) {
      await sleep(1000);
      const now = safeCpu(server.pid);
      worst = Math.max(worst, now - prev);
      prev = now;
    }
    const idleWallS = (Date.now() - tIdle) / 1000;
    const serverIdleUs = prev - s0;
    const othersUs = machineBusyUs() - m0 - serverIdleUs - (cpuOf(pids) - w0);
    const delay = await loopDelay(port);
    const counted = await workers.all({ op: 'count' }, 'counted');
    const stillOpen = counted.reduce((a, c) => a + c.open, 0);
    const idle = {
      seconds: round(idleWallS, 1),
      server_cpu_ms_per_s: round(serverIdleUs / 1000 / idleWallS, 2),
      server_cpu_worst_second_ms: round(worst / 1000, 1),
      loop_delay_max_ms: delay.max_ms,
      loop_delay_p99_ms: delay.p99_ms,
      clients_cpu_ms_per_s: round((cpuOf(pids) - w0) / 1000 / idleWallS, 2),
      others_cpu_ms_per_s: round(othersUs / 1000 / idleWallS, 1),
      still_open: stillOpen,
    };
    log(
      `  idle ${idle.seconds} s: server ${idle.server_cpu_ms_per_s} ms CPU/s (worst second ${idle.server_cpu_worst_second_ms} ms), ` +
        `loop delay max ${idle.loop_delay_max_ms} ms, ${stillOpen} still open, others ${idle.others_cpu_ms_per_s} ms/s`,
    );

    // One message per room.
    let message = null;
    if (cfg.messageBytes > 0) {
      owner = new BenchClient('ours', wsUrl('ours', port, ownerToken), () => {});
      await owner.open();
      const content = 'x'.repeat(cfg.messageBytes);
      const m0count = counted.reduce((a, c) => a + c.messages, 0);
      const tm = Date.now();
      for (let i = 0; i < rooms.length; i += 50)
        await Promise.all(
          rooms.slice(i, i + 50).map((id) => owner.request('send_message', { room_id: id, content })),
        );
      let got = 0;
      while (Date.now() - tm < 60000) {
        const c = await workers.all({ op: 'count' }, 'counted');
        got = c.reduce((a, x) => a + x.messages, 0) - m0count;
        if (got >= joined) break;
        await sleep(250);
      }
      await sleep(1000);
      const mem = await server.memory();
      message = {
        bytes: cfg.messageBytes,
        delivered: got,
        ms: Date.now() - tm,
        rss_per_connection_kib: kb((mem.rss - before.rss) / connected),
        heap_per_connection_kib: kb((mem.heapUsed - before.heapUsed) / connected),
        external_per_connection_kib: kb((mem.external - before.external) / connected),
      };
      log(
        `  ${got} deliveries of ${cfg.messageBytes} B; RSS now ${message.rss_per_connection_kib} KiB per connection`,
      );
    }
    return {
      run: name,
      ran_at: new Date().toISOString(),
      bench_command: benchCommand(),
      what: run.what,
      script: SERVERS[kind].script,
      command: server.command,
      loadavg_at_start: loadavg.map((l) => round(l, 2)),
      connected,
      failed,
      joined,
      join_failed: joinFailed,
      rooms: rooms.length,
      memory: {
        before_rss_mib: round(before.rss / 2 ** 20, 1),
        after_rss_mib: round(after.rss / 2 ** 20, 1),
        rss_per_connection_kib: kb(perConn('rss')),
        heap_per_connection_kib: kb(perConn('heapUsed')),
        external_per_connection_kib: kb(perConn('external')),
        array_buffers_per_connection_kib: kb(perConn('arrayBuffers')),
      },
      accept: {
        ms: connectMs,
        wall_ms_with_token_minting: connectWallMs,
        per_second: round((connected / connectMs) * 1000),
        server_cpu_us_per_connection: round(connectCpuUs / connected),
      },
      join: { ms: joinMs, server_cpu_us_per_join: round(joinCpuUs / Math.max(1, joined)) },
      idle,
      message,
    };
  } finally {
    owner?.close();
    await workers.close();
    await server.stop();
  }
}

/** This invocation: every BENCH_* variable that is set, then the script. */
function benchCommand() {
  return [
    ...Object.keys(process.env)
      .filter((k) => k.startsWith('BENCH_'))
      .sort()
      .map((k) => `${k}=${process.env[k]}`),
    'node bench/idle-connections.mjs',
  ].join(' ');
}

async function main() {
  const started = new Date();
  log(
    `idle connections: ${N} over ${cfg.procs} client processes and ${cfg.sourceAddrs} source addresses, ` +
      `${cfg.rooms} rooms, runs ${cfg.runs.join(', ')}`,
  );
  if (!fs.existsSync(path.resolve(root, cfg.oursScript)))
    throw new Error(`${cfg.oursScript} is missing: run npm run build (or set BENCH_OURS_SCRIPT)`);
  const results = [];
  for (const name of cfg.runs) {
    try {
      results.push(await oneRun(name));
    } catch (err) {
      log(`${name} FAILED: ${err.stack ?? err}`);
      results.push({ run: name, error: String(err.message ?? err) });
      process.exitCode = 1;
    }
    await sleep(2000);
  }

  // BENCH_IDLE_MERGE=1: keep the other runs of the results file (re-running a disturbed run).
  let kept = [];
  if (process.env.BENCH_IDLE_MERGE === '1' && fs.existsSync(outFile)) {
    const ran = new Set(results.map((r) => r.run));
    kept = JSON.parse(fs.readFileSync(outFile, 'utf8')).results.filter((r) => !ran.has(r.run));
  }
  const all = [...kept, ...results];
  // CPU per ping and per presence refresh: the difference to the quiet run, per event.
  const by = Object.fromEntries(all.filter((r) => !r.error).map((r) => [r.run, r]));
  const derived = {};
  for (const prefix of ['', 'base-']) {
    const quiet = by[`${prefix}quiet`];
    if (!quiet) continue;
    const base = quiet.idle.server_cpu_ms_per_s;
    if (by[`${prefix}ping`]) {
      const p = by[`${prefix}ping`];
      derived[`${prefix}ping_us_per_connection`] = round(
        ((p.idle.server_cpu_ms_per_s - base) * 1000) / (p.connected / 2),
        2,
      );
    }
    if (by[`${prefix}presence`]) {
      // New code: each user's record every 2 s; before: at every 1 s sweep.
      const p = by[`${prefix}presence`];
      const perSecond = prefix === 'base-' ? p.connected : p.connected / 2;
      derived[`${prefix}presence_refresh_us_per_user`] = round(
        ((p.idle.server_cpu_ms_per_s - base) * 1000) / perSecond,
        2,
      );
      derived[`${prefix}presence_sweep_ms_per_s`] = round(p.idle.server_cpu_ms_per_s - base, 2);
    }
  }
  const report = {
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    command: benchCommand(),
    machine: machine(),
    config: cfg,
    results: all,
    derived,
  };
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n');

  const ok = all.filter((r) => !r.error);
  printTable([
    [
      'run',
      'conns',
      'RSS KiB/conn',
      'heap KiB/conn',
      'accept/s',
      'CPU µs/connect',
      'CPU µs/join',
      'idle CPU ms/s',
      'worst s ms',
      'loop max ms',
      'RSS after msg KiB/conn',
    ],
    ...ok.map((r) => [
      r.run,
      r.connected,
      r.memory.rss_per_connection_kib,
      r.memory.heap_per_connection_kib,
      r.accept.per_second,
      r.accept.server_cpu_us_per_connection,
      r.join.server_cpu_us_per_join,
      r.idle.server_cpu_ms_per_s,
      r.idle.server_cpu_worst_second_ms,
      r.idle.loop_delay_max_ms ?? '-',
      r.message?.rss_per_connection_kib ?? '-',
    ]),
  ]);
  if (Object.keys(derived).length > 0) console.log('derived:', JSON.stringify(derived));
  console.log(`wrote ${path.relative(root, outFile)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
