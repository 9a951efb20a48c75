#!/usr/bin/env node
// Fan-out benchmark: nest-streaming's demo app against a bare `ws` broadcast
// loop and a minimal NestJS + Socket.IO gateway, measured the same way.
//
//   npm run bench                                   # defaults below, about 3 minutes
//   BENCH_CONNECTIONS=200 BENCH_MESSAGES=300 npm run bench   # quick run
//
// Each server runs in its own child process on 127.0.0.1; the receiving
// connections live in BENCH_CLIENT_PROCS client processes; the sender is one
// more connection (a room member, so it receives its own messages too) held
// by this orchestrator. See bench/README.md for the method.
import { execFileSync, fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BenchClient, messageContent, nowUs, wsUrl } from './lib/client.mjs';
import { Histogram } from './lib/histogram.mjs';
import { SignJWT } from 'jose';
import { CLK_TCK, cpuTimeUs, machineBusyUs, rssBytes } from './lib/proc.mjs';
import { analyzeProfile } from './lib/profile.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const resultsDir = path.join(benchDir, 'results');
const logsDir = path.join(resultsDir, 'logs');
const profilesDir = path.join(resultsDir, 'profiles');

const int = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
};

const cfg = {
  connections: int('BENCH_CONNECTIONS', 1000),
  messages: int('BENCH_MESSAGES', 2000),
  window: int('BENCH_WINDOW', 32),
  rate: int('BENCH_RATE', 20),
  rateMessages: int('BENCH_RATE_MESSAGES', 200),
  warmup: int('BENCH_WARMUP', 100),
  profileMessages: int('BENCH_PROFILE_MESSAGES', 600),
  warmConnections: int('BENCH_WARM_CONNECTIONS', 200),
  // Connection attempts in flight per client process. A storm of parallel upgrades raises the
  // server's malloc high-water mark, which RSS keeps and would charge to the idle connections.
  connectConcurrency: Math.max(1, int('BENCH_CONNECT_CONCURRENCY', 10)),
  payload: int('BENCH_PAYLOAD', 100),
  clientProcs: Math.max(1, int('BENCH_CLIENT_PROCS', 2)),
  stallMs: int('BENCH_STALL_MS', 20000),
  profile: process.env.BENCH_PROFILE !== '0',
  build: process.env.BENCH_SKIP_BUILD !== '1',
  servers: (process.env.BENCH_SERVERS ?? 'ws-bare,socketio,ours')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
};

const SERVERS = {
  'ws-bare': {
    label: 'bare ws loop',
    script: 'bench/servers/ws-bare.mjs',
    env: {},
  },
  socketio: {
    label: 'NestJS + socket.io',
    script: 'bench/servers/nest-socketio.mjs',
    env: {},
  },
  ours: {
    label: 'nest-streaming demo',
    // BENCH_OURS_SCRIPT runs another build of the demo (e.g. a patched copy, for an A/B test).
    script: process.env.BENCH_OURS_SCRIPT || 'dist/apps/demo-chat/src/main.js',
    env: {
      HOST: '127.0.0.1',
      JWT_SECRET: 'bench-secret-bench-secret-bench-secret',
      FORGE_STREAMING_HISTORY_STORE: 'memory',
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000000',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000000',
      FORGE_STREAMING_MAX_MESSAGES_PER_SECOND: '1000000',
      FORGE_STREAMING_MAX_CONNECTIONS_PER_USER: '10',
    },
  },
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child, timeoutMs = 60000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`server exited early with code ${child.exitCode}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`server did not listen on ${port} within ${timeoutMs} ms`);
}

// ---------------------------------------------------------------- server process

class ServerProc {
  constructor(kind, port, { profile }) {
    const spec = SERVERS[kind];
    this.kind = kind;
    this.port = port;
    fs.mkdirSync(logsDir, { recursive: true });
    this.logFile = path.join(logsDir, `${kind}${profile ? '-profile' : ''}.log`);
    const out = fs.openSync(this.logFile, 'w');
    const nodeArgs = [
      '--expose-gc',
      '--import',
      pathToFileURL(path.join(benchDir, 'lib/server-preload.mjs')).href,
    ];
    if (profile) {
      this.profileDir = path.join(profilesDir, kind);
      fs.rmSync(this.profileDir, { recursive: true, force: true });
      fs.mkdirSync(this.profileDir, { recursive: true });
      nodeArgs.push('--cpu-prof', '--cpu-prof-dir', this.profileDir, '--cpu-prof-interval', '250');
    }
    this.args = [...nodeArgs, spec.script];
    this.child = spawn(process.execPath, this.args, {
      cwd: root,
      env: { ...process.env, NODE_ENV: 'production', PORT: String(port), ...spec.env },
      stdio: ['ignore', out, out, 'ipc'],
    });
    this.pid = this.child.pid;
    this.replies = new Map();
    this.nextReq = 1;
    this.child.on('message', (m) => {
      const r = this.replies.get(m.reqId);
      if (r) {
        this.replies.delete(m.reqId);
        r(m);
      }
    });
  }

  ask(op, timeoutMs = 15000) {
    const reqId = this.nextReq++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`server did not answer ${op}`)), timeoutMs);
      this.replies.set(reqId, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.child.send({ op, reqId });
    });
  }

  /** Settle the heap (two GCs), then read RSS from /proc and the heap from the process. */
  async memory() {
    const a = await this.ask('mem');
    await sleep(700);
    return {
      rss: rssBytes(this.pid),
      heapUsed: a.mem.heapUsed,
      external: a.mem.external,
      arrayBuffers: a.mem.arrayBuffers,
      heapTotal: a.mem.heapTotal,
    };
  }

  async stop() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.exitHr = nowUs();
    this.child.send({ op: 'exit' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 20000);
    await exited;
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------- client processes

class Workers {
  constructor(count) {
    this.procs = [];
    this.handlers = [];
    for (let i = 0; i < count; i++) {
      const w = fork(path.join(benchDir, 'lib/client-worker.mjs'), [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const idx = i;
      w.on('message', (m) => {
        if (m.op === 'fatal') console.error(`client worker ${idx}: ${m.message}`);
        for (const h of [...this.handlers]) h(idx, m);
      });
      this.procs.push(w);
    }
  }

  /** Send each worker its command; resolve with every worker's reply of type `replyOp`. */
  all(cmds, replyOp, timeoutMs = 120000) {
    return new Promise((resolve, reject) => {
      const replies = new Array(this.procs.length);
      let left = this.procs.length;
      const t = setTimeout(() => {
        this.off(h);
        reject(new Error(`client workers did not answer ${replyOp}`));
      }, timeoutMs);
      const h = (idx, m) => {
        if (m.op !== replyOp || replies[idx] !== undefined) return;
        replies[idx] = m;
        if (--left === 0) {
          clearTimeout(t);
          this.off(h);
          resolve(replies);
        }
      };
      this.handlers.push(h);
      this.procs.forEach((w, i) => w.send(typeof cmds === 'function' ? cmds(i) : cmds));
    });
  }

  on(h) {
    this.handlers.push(h);
  }

  off(h) {
    this.handlers = this.handlers.filter((x) => x !== h);
  }

  async close() {
    await Promise.all(
      this.procs.map(
        (w) =>
          new Promise((r) => {
            if (w.exitCode !== null) return r();
            w.once('exit', r);
            w.send({ op: 'close' });
            setTimeout(() => w.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
  }
}

// ---------------------------------------------------------------- demo app helpers

async function httpJson(port, method, urlPath, body, token) {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${urlPath}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

/**
 * Tokens for the receiving users, signed here with the server's JWT_SECRET and the
 * claims POST /api/auth/login issues (sub, sid, name, iat, exp): 1000 logins through
 * the server would leave garbage in its heap just before the idle-memory baseline.
 */
async function mintTokens(names) {
  const key = new TextEncoder().encode(SERVERS.ours.env.JWT_SECRET);
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

// ---------------------------------------------------------------- one phase

let phaseCounter = 0;

/**
 * Send `m` messages and wait until every connection (receivers and sender) got all of them.
 *   mode 'window': as fast as the end-to-end window allows (at most `window` messages
 *                  not yet received by every connection).
 *   mode 'rate':   open loop at `rate` messages/s.
 */
async function runPhase(ctx, { name, mode, m, window, rate }) {
  const id = ++phaseCounter;
  const { server, workers, sender, roomId, receivers } = ctx;
  const local = { counts: new Uint32Array(m + 2), done: 0, hist: new Histogram(), deliveries: 0 };
  sender.onDelivery = (ph, seq, lat) => {
    if (ph !== id || seq < 1 || seq > m) return;
    local.counts[seq]++;
    local.deliveries++;
    local.hist.record(lat);
    while (local.done < m && local.counts[local.done + 1] >= 1) local.done++;
    progress();
  };
  sender.lastSeq = 0;
  await workers.all({ op: 'phase', id, m }, 'phase-ready');

  const doneBy = new Array(workers.procs.length).fill(0);
  let sent = 0;
  let acks = 0;
  let ackErrors = 0;
  let lastAckError = null;
  let lastProgressAt = Date.now();
  let finished = false;
  let t1 = null;
  let cpu1 = null;
  let finish;
  const finishedP = new Promise((r) => (finish = r));

  const globalDone = () => Math.min(local.done, ...doneBy);
  const sendOne = () => {
    sent++;
    sender.request('send_message', { room_id: roomId, content: messageContent(id, sent, cfg.payload) }).then(
      () => acks++,
      (e) => {
        ackErrors++;
        lastAckError = e.message;
      },
    );
  };
  const pump = () => {
    if (mode !== 'window') return;
    const g = globalDone();
    while (sent < m && sent - g < window) sendOne();
  };
  function progress() {
    lastProgressAt = Date.now();
    if (finished) return;
    if (globalDone() >= m) {
      t1 = nowUs();
      cpu1 = cpuTimeUs(server.pid);
      finished = true;
      finish();
      return;
    }
    pump();
  }
  const onWorker = (idx, msg) => {
    if (msg.op !== 'progress' || msg.phase !== id) return;
    doneBy[idx] = msg.done;
    progress();
  };
  workers.on(onWorker);

  const ourPids = workers.procs.map((p) => p.pid);
  const oursCpu = () =>
    ourPids.reduce((a, pid) => a + cpuTimeUs(pid).total, 0) +
    process.cpuUsage().user +
    process.cpuUsage().system;
  const busy0 = machineBusyUs();
  const ours0 = oursCpu();
  const cpu0 = cpuTimeUs(server.pid);
  const t0 = nowUs();
  if (mode === 'window') pump();
  else {
    const tick = () => {
      if (finished) return;
      const due = Math.min(m, Math.floor(((nowUs() - t0) * rate) / 1e6) + 1);
      while (sent < due) sendOne();
      if (sent < m) setTimeout(tick, 1);
    };
    tick();
  }
  const stall = setInterval(() => {
    if (!finished && sent >= (mode === 'window' ? 1 : m) && Date.now() - lastProgressAt > cfg.stallMs) {
      t1 = nowUs();
      cpu1 = cpuTimeUs(server.pid);
      finished = true;
      finish();
    }
  }, 250);
  await finishedP;
  const busy1 = machineBusyUs();
  const ours1 = oursCpu();
  clearInterval(stall);
  workers.off(onWorker);
  await sleep(200); // let the last acks arrive
  const stats = await workers.all({ op: 'collect' }, 'stats');
  const hist = local.hist;
  let deliveries = local.deliveries;
  const w = { stale: 0, dupes: 0, outOfOrder: 0, errors: 0, closed: 0, closeCodes: [], lastError: null };
  let frames = 0;
  for (const s of stats) {
    frames += s.frames;
    hist.merge(Histogram.fromJSON(s.hist));
    deliveries += s.deliveries;
    w.stale += s.stale;
    w.dupes += s.dupes;
    w.outOfOrder += s.outOfOrder;
    w.errors += s.errors;
    w.closed += s.closed;
    w.closeCodes.push(...s.closeCodes);
    w.lastError ??= s.lastError;
  }
  const expected = m * (receivers + 1);
  const wallUs = t1 - t0;
  const cpuUs = cpu1.total - cpu0.total;
  const lat = hist.summary();
  const r = {
    name,
    mode,
    messages: m,
    window: mode === 'window' ? window : undefined,
    rate: mode === 'rate' ? rate : undefined,
    sent,
    acks,
    ack_errors: ackErrors,
    last_ack_error: lastAckError,
    complete: globalDone() >= m,
    deliveries,
    expected_deliveries: expected,
    wall_s: wallUs / 1e6,
    server_cpu_ms: cpuUs / 1000,
    server_cpu_user_ms: (cpu1.user - cpu0.user) / 1000,
    server_cpu_system_ms: (cpu1.system - cpu0.system) / 1000,
    server_cpu_us_per_delivery: deliveries ? cpuUs / deliveries : null,
    server_cpu_utilization: cpuUs / wallUs,
    client_cpu_ms: (ours1 - ours0) / 1000,
    // CPU used on this machine by processes that are not part of the benchmark (other jobs disturb the numbers).
    foreign_cpu_cores: Math.max(0, busy1 - busy0 - (cpu1.total - cpu0.total) - (ours1 - ours0)) / wallUs,
    receiver_frames: frames,
    deliveries_per_frame: frames ? (deliveries - local.deliveries) / frames : null,
    deliveries_per_s: deliveries / (wallUs / 1e6),
    messages_per_s: m / (wallUs / 1e6),
    latency: lat,
    client_issues: w,
    t0_us: t0,
    t1_us: t1,
  };
  log(
    `  ${name}: ${deliveries}/${expected} deliveries in ${r.wall_s.toFixed(2)} s, ` +
      `${Math.round(r.deliveries_per_s)}/s, server CPU ${r.server_cpu_ms.toFixed(0)} ms ` +
      `(${r.server_cpu_us_per_delivery?.toFixed(3)} µs/delivery, ${(100 * r.server_cpu_utilization).toFixed(0)}% of a core), ` +
      `p50 ${(lat.p50_us / 1000).toFixed(2)} ms p99 ${(lat.p99_us / 1000).toFixed(2)} ms, ` +
      `${r.deliveries_per_frame?.toFixed(2)} msgs/frame, foreign load ${r.foreign_cpu_cores.toFixed(2)} cores` +
      (ackErrors || w.errors || w.closed || w.dupes || w.outOfOrder
        ? `  [acks failed ${ackErrors}, errors ${w.errors}, closed ${w.closed} ${w.closeCodes.join(',')}, dupes ${w.dupes}, out of order ${w.outOfOrder}: ${lastAckError ?? w.lastError ?? ''}]`
        : ''),
  );
  return r;
}

// ---------------------------------------------------------------- one server

async function benchServer(
  kind,
  {
    profile = false,
    phases = ['warmup', 'throughput', 'rate'],
    messages = cfg.messages,
    measureIdle = true,
  } = {},
) {
  const spec = SERVERS[kind];
  const port = await freePort();
  log(`${spec.label} (${kind})${profile ? ' with --cpu-prof' : ''} on 127.0.0.1:${port}`);
  const server = new ServerProc(kind, port, { profile });
  const result = { kind, label: spec.label, command: `node ${server.args.join(' ')}`, profile };
  let workers = null;
  let sender = null;
  try {
    await waitForPort(port, server.child);
    const n = cfg.connections;
    let tokens = null;
    let senderToken = null;
    let roomId = 'bench';
    if (kind === 'ours') {
      senderToken = (await httpJson(port, 'POST', '/api/auth/login', { username: 'bench-sender' })).token;
      tokens = await mintTokens(Array.from({ length: n }, (_v, i) => `bench-${i}`));
      roomId = (await httpJson(port, 'POST', '/api/rooms', { name: 'bench' }, senderToken)).id;
    }
    sender = new BenchClient(kind, wsUrl(kind, port, senderToken), () => {});
    await sender.open();
    await sender.join(roomId);

    // One-time costs of the first connections (lazy-loaded code, JIT, the libuv thread pool that
    // WebCrypto JWT checks start, malloc arenas) must not be charged to the idle connections:
    // open and close a few connections before the baseline.
    const warmN = measureIdle ? Math.min(cfg.warmConnections, n) : 0;
    if (warmN > 0) {
      const warmTokens =
        kind === 'ours'
          ? await mintTokens(Array.from({ length: warmN }, (_v, i) => `bench-warm-${i}`))
          : null;
      const warm = Array.from(
        { length: warmN },
        (_v, i) => new BenchClient(kind, wsUrl(kind, port, warmTokens?.[i]), () => {}),
      );
      for (let i = 0; i < warm.length; i += cfg.connectConcurrency)
        await Promise.all(warm.slice(i, i + cfg.connectConcurrency).map((c) => c.open()));
      await sleep(200);
      for (const c of warm) c.close();
      await sleep(500);
    }
    // Idle memory: RSS with the sender only, then with N idle (connected, not yet joined) connections.
    const mem0 = measureIdle ? await server.memory() : null;
    const procs = Math.min(cfg.clientProcs, Math.max(1, n));
    workers = new Workers(procs);
    const share = (i) => Math.floor(n / procs) + (i < n % procs ? 1 : 0);
    const offset = (i) => Array.from({ length: i }, (_v, k) => share(k)).reduce((a, b) => a + b, 0);
    // Two steps (half, then the rest), so the per-connection figure can be checked for linearity.
    const tConn = Date.now();
    let connected = 0;
    let failed = 0;
    let firstError;
    const mems = [];
    for (const half of [0, 1]) {
      const part = (i) => (half === 0 ? Math.floor(share(i) / 2) : share(i) - Math.floor(share(i) / 2));
      const from = (i) => offset(i) + (half === 0 ? 0 : Math.floor(share(i) / 2));
      const conn = await workers.all(
        (i) => ({
          op: 'connect',
          kind,
          port,
          count: part(i),
          tokens: tokens?.slice(from(i), from(i) + part(i)),
          concurrency: cfg.connectConcurrency,
        }),
        'connected',
      );
      connected += conn.reduce((a, c) => a + c.ok, 0);
      failed += conn.reduce((a, c) => a + c.failed, 0);
      firstError ??= conn.find((c) => c.firstError)?.firstError;
      if (measureIdle) {
        await sleep(500);
        mems.push({ connections: connected, ...(await server.memory()) });
      }
    }
    log(
      `  ${connected} connections open in ${Date.now() - tConn} ms${failed ? `, ${failed} failed: ${firstError}` : ''}`,
    );
    if (connected === 0) throw new Error('no connection could be opened');
    const [memHalf, memN] = mems;
    const heapOf = (m) => m.heapUsed + m.external;
    if (measureIdle)
      result.idle = {
        connections: connected,
        rss_base_bytes: mem0.rss,
        rss_idle_bytes: memN.rss,
        rss_per_connection_bytes: (memN.rss - mem0.rss) / connected,
        heap_per_connection_bytes: (heapOf(memN) - heapOf(mem0)) / connected,
        rss_per_connection_second_half_bytes:
          (memN.rss - memHalf.rss) / (memN.connections - memHalf.connections || 1),
        base: mem0,
        half: memHalf,
        idle: memN,
      };
    if (measureIdle)
      log(
        `  idle: RSS ${(mem0.rss / 2 ** 20).toFixed(1)} -> ${(memHalf.rss / 2 ** 20).toFixed(1)} -> ${(memN.rss / 2 ** 20).toFixed(1)} MiB = ` +
          `${(result.idle.rss_per_connection_bytes / 1024).toFixed(1)} KB/connection ` +
          `(second half alone ${(result.idle.rss_per_connection_second_half_bytes / 1024).toFixed(1)} KB; ` +
          `heap+external ${(result.idle.heap_per_connection_bytes / 1024).toFixed(1)} KB/connection)`,
      );

    const tJoin = Date.now();
    const joined = await workers.all({ op: 'join', roomId }, 'joined', 300000);
    const jfail = joined.reduce((a, c) => a + c.failed, 0);
    log(
      `  joined the room in ${Date.now() - tJoin} ms${jfail ? `, ${jfail} joins failed: ${joined.find((c) => c.firstError)?.firstError}` : ''}`,
    );
    await sleep(1000);

    const ctx = { server, workers, sender, roomId, receivers: connected };
    result.phases = {};
    if (phases.includes('warmup') && cfg.warmup > 0)
      result.phases.warmup = await runPhase(ctx, {
        name: 'warmup',
        mode: 'window',
        m: cfg.warmup,
        window: cfg.window,
      });
    if (phases.includes('throughput') && messages > 0)
      result.phases.throughput = await runPhase(ctx, {
        name: 'throughput',
        mode: 'window',
        m: messages,
        window: cfg.window,
      });
    if (phases.includes('rate') && cfg.rateMessages > 0 && cfg.rate > 0)
      result.phases.rate = await runPhase(ctx, {
        name: 'rate',
        mode: 'rate',
        m: cfg.rateMessages,
        rate: cfg.rate,
      });
    result.rss_after_bytes = rssBytes(server.pid);
  } finally {
    sender?.close();
    await workers?.close();
    await server.stop();
  }
  if (profile) {
    const files = fs.readdirSync(server.profileDir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length > 0) {
      const file = path.join(server.profileDir, files[0]);
      const tp = result.phases?.throughput;
      const whole = analyzeProfile(file, { root });
      // V8 profile timestamps and process.hrtime share CLOCK_MONOTONIC on Linux; check before trusting the window.
      const aligned = tp && whole.profileStartUs <= tp.t0_us && tp.t1_us <= whole.profileEndUs;
      result.profile_file = path.relative(root, file);
      result.profile_analysis = aligned
        ? {
            scope: 'throughput phase only',
            ...analyzeProfile(file, { root, fromUs: tp.t0_us, toUs: tp.t1_us }),
          }
        : { scope: 'whole process (clock alignment check failed)', ...whole };
      log(
        `  profile: ${result.profile_file} (${result.profile_analysis.scope}, ${result.profile_analysis.windowMs} ms sampled)`,
      );
    } else {
      log('  profile: no .cpuprofile written');
    }
  }
  return result;
}

// ---------------------------------------------------------------- report

const f = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));
const ms = (us) => (us === null || us === undefined ? 'n/a' : (us / 1000).toFixed(2));

function tableRows(results) {
  const head = [
    'server',
    'CPU µs/delivery (max load)',
    'deliveries/s',
    'p50 ms',
    'p99 ms',
    'msgs/frame',
    `CPU µs/delivery (${cfg.rate} msg/s)`,
    'p50 ms @rate',
    'p99 ms @rate',
    'KB RSS/idle conn',
    'KB heap/idle conn',
  ];
  const rows = results.map((r) => {
    const tp = r.phases?.throughput;
    const rt = r.phases?.rate;
    return [
      r.label + (tp && !tp.complete ? ' (INCOMPLETE)' : ''),
      f(tp?.server_cpu_us_per_delivery, 3),
      tp ? String(Math.round(tp.deliveries_per_s)) : 'n/a',
      ms(tp?.latency.p50_us),
      ms(tp?.latency.p99_us),
      f(tp?.deliveries_per_frame, 2),
      f(rt?.server_cpu_us_per_delivery, 3),
      ms(rt?.latency.p50_us),
      ms(rt?.latency.p99_us),
      f(r.idle ? r.idle.rss_per_connection_bytes / 1024 : null, 1),
      f(r.idle ? r.idle.heap_per_connection_bytes / 1024 : null, 1),
    ];
  });
  return [head, ...rows];
}

function printTable(rows) {
  const widths = rows[0].map((_c, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) =>
    r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  console.log('\n' + line(rows[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));
  console.log('');
}

const mdTable = (rows) =>
  [
    `| ${rows[0].join(' | ')} |`,
    `| ${rows[0].map((_c, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.slice(1).map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

function comparisons(results) {
  const by = Object.fromEntries(results.map((r) => [r.kind, r]));
  const out = [];
  const cmp = (a, b, phase, what) => {
    const x = by[a]?.phases?.[phase]?.server_cpu_us_per_delivery;
    const y = by[b]?.phases?.[phase]?.server_cpu_us_per_delivery;
    if (x && y) out.push({ what, phase, a, b, ratio: x / y });
  };
  for (const phase of ['throughput', 'rate']) {
    cmp('ours', 'ws-bare', phase, 'CPU per delivery, ours / bare ws loop');
    cmp('ours', 'socketio', phase, 'CPU per delivery, ours / NestJS+socket.io');
    cmp('socketio', 'ws-bare', phase, 'CPU per delivery, NestJS+socket.io / bare ws loop');
  }
  const rss = (k) => by[k]?.idle?.rss_per_connection_bytes;
  if (rss('ours') && rss('ws-bare'))
    out.push({ what: 'RSS per idle connection, ours / bare ws loop', ratio: rss('ours') / rss('ws-bare') });
  if (rss('ours') && rss('socketio'))
    out.push({
      what: 'RSS per idle connection, ours / NestJS+socket.io',
      ratio: rss('ours') / rss('socketio'),
    });
  return out;
}

function machine() {
  const cpus = os.cpus();
  let nproc = cpus.length;
  try {
    nproc = Number(execFileSync('nproc').toString().trim());
  } catch {
    /* os.cpus() then */
  }
  return {
    nproc,
    cpu_model: cpus[0]?.model,
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    total_mem_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
    clk_tck: CLK_TCK,
  };
}

function writeMarkdown(report) {
  const { config: c, machine: mc, results, comparisons: comps, profile } = report;
  const rows = tableRows(results);
  const pct = (r) => `${((r - 1) * 100).toFixed(0)}%`;
  const lines = [];
  lines.push('# Fan-out benchmark results', '');
  lines.push(
    `Generated by \`npm run bench\` (bench/run.mjs) on ${report.finished_at}. Method and caveats: [README.md](README.md).`,
    '',
  );
  lines.push('## Machine', '');
  lines.push(`- nproc: ${mc.nproc} (${mc.cpu_model}), ${mc.total_mem_gib} GiB RAM, ${mc.platform}`);
  lines.push(
    `- node ${mc.node}; servers, ${c.clientProcs} client process(es) and the orchestrator share these cores`,
    '',
  );
  lines.push('## Workload', '');
  lines.push(
    `- ${c.connections} receiving connections (${c.clientProcs} client processes) + 1 sender connection, all members of one room: every message is delivered ${c.connections + 1} times`,
  );
  lines.push(
    `- max load: ${c.messages} messages, sender keeps at most ${c.window} messages not yet received by every connection (end-to-end window), after ${c.warmup} warm-up messages`,
  );
  lines.push(
    `- fixed rate: ${c.rateMessages} messages at ${c.rate} messages/s (${c.rate * (c.connections + 1)} deliveries/s)`,
  );
  lines.push(
    `- message content ${c.payload} characters; each server broadcasts the same message object shape (id, seq, room_id, user_id, content, metadata, timestamp, reactions)`,
  );
  lines.push(
    '- server CPU = utime+stime of the server process from /proc/<pid>/stat over the phase; latency = sender timestamp in the content to arrival at the receiving client',
  );
  lines.push(
    '- idle memory = (RSS with N idle connections - RSS with 0) / N, each read 0.7 s after two forced GCs',
    '',
  );
  lines.push('## Results', '');
  lines.push(mdTable(rows), '');
  lines.push(
    '"max load" = the throughput phase (end-to-end window); "msgs/frame" = benchmark messages per WebSocket frame received by the clients in that phase (1.00 = no batching).',
    '',
  );
  const noisy = results.flatMap((r) =>
    Object.values(r.phases ?? {})
      .filter((p) => p.foreign_cpu_cores > 0.2)
      .map((p) => `${r.label} ${p.name}: ${p.foreign_cpu_cores.toFixed(2)} cores`),
  );
  if (noisy.length > 0)
    lines.push(
      `**Warning:** other processes on this machine used CPU during some phases (${noisy.join('; ')}). ` +
        "CPU time per delivery is the server process's own and is little affected; deliveries/s and latency are.",
      '',
    );
  lines.push('## Comparisons', '');
  for (const x of comps) {
    lines.push(
      `- ${x.what}${x.phase ? ` (${x.phase === 'throughput' ? 'max load' : 'fixed rate'})` : ''}: **${x.ratio.toFixed(2)}x**` +
        (x.ratio >= 1 ? ` (${pct(x.ratio)} more)` : ` (${((1 - x.ratio) * 100).toFixed(0)}% less)`),
    );
  }
  lines.push('');
  lines.push('## Details per server', '');
  for (const r of results) {
    lines.push(`### ${r.label}`, '');
    lines.push(`- command: \`${r.command}\``);
    if (r.idle)
      lines.push(
        `- idle: ${r.idle.connections} connections, RSS ${(r.idle.rss_base_bytes / 2 ** 20).toFixed(1)} -> ` +
          `${(r.idle.half.rss / 2 ** 20).toFixed(1)} (${r.idle.half.connections}) -> ${(r.idle.rss_idle_bytes / 2 ** 20).toFixed(1)} MiB: ` +
          `${(r.idle.rss_per_connection_bytes / 1024).toFixed(1)} KB/connection (second half alone ` +
          `${(r.idle.rss_per_connection_second_half_bytes / 1024).toFixed(1)} KB), V8 heap + external ` +
          `${(r.idle.heap_per_connection_bytes / 1024).toFixed(1)} KB/connection`,
      );
    for (const p of Object.values(r.phases ?? {})) {
      const ci = p.client_issues;
      lines.push(
        `- ${p.name}: ${p.deliveries}/${p.expected_deliveries} deliveries in ${p.wall_s.toFixed(2)} s (${Math.round(p.messages_per_s)} msg/s), ` +
          `server CPU ${p.server_cpu_ms.toFixed(0)} ms (user ${p.server_cpu_user_ms.toFixed(0)}, system ${p.server_cpu_system_ms.toFixed(0)}), ` +
          `${(100 * p.server_cpu_utilization).toFixed(0)}% of a core, ${p.deliveries_per_frame?.toFixed(2)} msgs/frame, ` +
          `clients' CPU ${p.client_cpu_ms.toFixed(0)} ms, foreign load ${p.foreign_cpu_cores.toFixed(2)} cores, ` +
          `latency p50/p90/p99/max ${ms(p.latency.p50_us)}/${ms(p.latency.p90_us)}/${ms(p.latency.p99_us)}/${ms(p.latency.max_us)} ms` +
          (p.ack_errors || ci.errors || ci.closed || ci.dupes || ci.outOfOrder
            ? `; problems: ${p.ack_errors} failed acks, ${ci.errors} error frames, ${ci.closed} closed sockets, ${ci.dupes} duplicates, ${ci.outOfOrder} out of order`
            : ''),
      );
    }
    lines.push('');
  }
  if (profile?.profile_analysis) {
    const pa = profile.profile_analysis;
    lines.push('## CPU profile of nest-streaming (separate run with --cpu-prof)', '');
    lines.push(
      `File \`${profile.profile_file}\` (written by the run, not committed; open it in Chrome DevTools or speedscope). ` +
        `Scope: ${pa.scope}, ${pa.samplesInWindow} samples (${pa.windowMs} ms of CPU). ` +
        `That run's throughput phase: ${f(profile.phases?.throughput?.server_cpu_us_per_delivery, 3)} µs/delivery (with the profiler's overhead).`,
      '',
    );
    lines.push('### Top self time', '', '| function | self ms | % |', '| --- | ---: | ---: |');
    for (const x of pa.self) lines.push(`| \`${x.name}\` | ${x.ms} | ${x.pct} |`);
    lines.push(
      '',
      '### Top total (inclusive) time',
      '',
      '| function | total ms | % |',
      '| --- | ---: | ---: |',
    );
    for (const x of pa.total) lines.push(`| \`${x.name}\` | ${x.ms} | ${x.pct} |`);
    lines.push('', '### Self time by package / area', '', '| area | self ms | % |', '| --- | ---: | ---: |');
    for (const x of pa.areas) lines.push(`| ${x.name} | ${x.ms} | ${x.pct} |`);
    lines.push('');
  }
  lines.push('## Commands', '');
  lines.push('```sh');
  lines.push(
    'npm run bench                                   # builds the demo app first, then runs all three servers',
  );
  lines.push(
    `BENCH_CONNECTIONS=${c.connections} BENCH_MESSAGES=${c.messages} BENCH_WINDOW=${c.window} BENCH_RATE=${c.rate} BENCH_RATE_MESSAGES=${c.rateMessages} npm run bench   # this run`,
  );
  lines.push('```', '');
  fs.writeFileSync(path.join(benchDir, 'RESULTS.md'), lines.join('\n'));
}

/** Format written files the way `npm run format:check` expects (skipped if prettier is missing). */
async function prettify(files) {
  let prettier;
  try {
    prettier = await import('prettier');
  } catch {
    return;
  }
  for (const file of files) {
    const options = { ...(await prettier.resolveConfig(file)), filepath: file };
    fs.writeFileSync(file, await prettier.format(fs.readFileSync(file, 'utf8'), options));
  }
}

// ---------------------------------------------------------------- main

async function main() {
  if (process.env.BENCH_REPORT_ONLY === '1') {
    // Re-render RESULTS.md from bench/results/latest.json (after a change to the report's format).
    const file = path.join(resultsDir, 'latest.json');
    writeMarkdown(JSON.parse(fs.readFileSync(file, 'utf8')));
    await prettify([path.join(benchDir, 'RESULTS.md')]);
    console.log('wrote bench/RESULTS.md from bench/results/latest.json');
    return;
  }
  const started = Date.now();
  for (const s of cfg.servers) if (!SERVERS[s]) throw new Error(`unknown server "${s}" in BENCH_SERVERS`);
  log(`config ${JSON.stringify(cfg)}`);
  if (cfg.build && (cfg.servers.includes('ours') || cfg.profile)) {
    log('building the demo app (npm run build; BENCH_SKIP_BUILD=1 skips)');
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  }
  if (!fs.existsSync(path.resolve(root, SERVERS.ours.script)) && cfg.servers.includes('ours'))
    throw new Error('dist/apps/demo-chat/src/main.js is missing: run npm run build');
  fs.mkdirSync(resultsDir, { recursive: true });

  const results = [];
  for (const kind of cfg.servers) {
    try {
      results.push(await benchServer(kind));
    } catch (err) {
      log(`${kind} FAILED: ${err.stack ?? err}`);
      results.push({ kind, label: SERVERS[kind].label, error: String(err.message ?? err) });
    }
  }
  let profile = null;
  if (cfg.profile && cfg.servers.includes('ours')) {
    try {
      profile = await benchServer('ours', {
        profile: true,
        phases: ['warmup', 'throughput'],
        messages: Math.min(cfg.messages, cfg.profileMessages),
        measureIdle: false,
      });
    } catch (err) {
      log(`profile run FAILED: ${err.stack ?? err}`);
    }
  }

  const report = {
    finished_at: new Date().toISOString(),
    duration_s: (Date.now() - started) / 1000,
    config: cfg,
    machine: machine(),
    results,
    comparisons: comparisons(results),
    profile,
  };
  // BENCH_RESULTS_NAME=x writes bench/results/x.json only (side experiments do not replace the reference results).
  const name = process.env.BENCH_RESULTS_NAME;
  const jsonOut = path.join(resultsDir, `${name || 'latest'}.json`);
  fs.writeFileSync(jsonOut, JSON.stringify(report, null, 2));
  if (!name) writeMarkdown(report);
  await prettify([jsonOut, ...(name ? [] : [path.join(benchDir, 'RESULTS.md')])]);

  const rows = tableRows(results.filter((r) => !r.error));
  printTable(rows);
  for (const x of report.comparisons)
    console.log(
      `${x.what}${x.phase ? ` (${x.phase === 'throughput' ? 'max load' : 'fixed rate'})` : ''}: ${x.ratio.toFixed(2)}x`,
    );
  if (profile?.profile_analysis) {
    console.log(`\nTop self time in nest-streaming (${profile.profile_analysis.scope}):`);
    for (const x of profile.profile_analysis.self.slice(0, 15))
      console.log(`  ${String(x.pct).padStart(5)}%  ${x.name}`);
  }
  console.log(
    `\nwrote ${path.relative(root, jsonOut)}${name ? '' : ' and bench/RESULTS.md'} in ${report.duration_s.toFixed(0)} s`,
  );
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
