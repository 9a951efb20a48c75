#!/usr/bin/env node
// Redis Cluster against a single Redis (issue 16): cross-node fan-out of room
// messages on the Redis backend, three demo nodes, one redis-server or a
// 3-master Redis Cluster (sharded or classic pub/sub, with or without replicas
// and the replica wait of `redisWaitReplicas`).
//
//   node bench/redis-cluster.mjs                                   # about 3 minutes on 2 cores
//   BENCH_RC_SETUPS=single,cluster BENCH_RC_SECONDS=5 node bench/redis-cluster.mjs   # quick
//   BENCH_RC_REPORT_ONLY=1 node bench/redis-cluster.mjs             # re-render the .md from the .json
//
// Load: BENCH_RC_ROOMS rooms (default 60); room r is hosted by node r % 3, where
// its BENCH_RC_MEMBERS members (default 4) are connected, so only that node
// subscribes to it. Its messages are posted on the next node (r + 1) % 3 through
// the server API (POST /_/streaming/api/rooms/:id/messages, no socket joins the
// room there), BENCH_RC_RATE messages/s in all (default 200) for BENCH_RC_SECONDS
// (default 10) after BENCH_RC_WARMUP_SECONDS (default 2). Every message crosses
// Redis. Latency: from just before the POST to the frame's arrival at a member.
//
// The demo nodes run this checkout's TypeScript sources, compiled on load with
// SWC (as the e2e tests do), so no build is needed and dist/ is left alone;
// redis-server runs without persistence. Writes bench/results/redis-cluster.json
// and bench/results/redis-cluster.md (appended to bench/RESULTS.md by run.mjs). BENCH_RC_PROBE_APPENDS
// (default 3000; 0: none) sizes the last part, appendMessage alone with and without the replica wait.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');

if (process.argv[2] === '--app') runApp();
else if (process.argv[2] === '--append-probe')
  appendProbe(JSON.parse(process.argv[3])).catch((err) => {
    console.error(err);
    process.exit(1);
  });
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });

/** A demo node from the TypeScript sources. */
function runApp() {
  requireTs()(path.join(ROOT, 'apps/demo-chat/src/main.ts'));
}

/**
 * The cost of `redisWaitReplicas` alone, without the fan-out around it: `lanes`
 * rooms, each appended to `perLane` times in a row (with the room's topic to
 * publish on) through one RedisBackend; prints the per-append latencies' summary.
 */
async function appendProbe({ urls, waitReplicas, lanes, perLane }) {
  const { RedisBackend } = requireTs()(path.join(ROOT, 'libs/streaming/src/backends/redis/redis.backend.ts'));
  const backend = new RedisBackend({ urls, keyPrefix: `probe${waitReplicas}-${Date.now()}:`, waitReplicas });
  await backend.connect();
  const samples = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async (_v, lane) => {
      const room = { id: `probe-${lane}`, name: 'p', description: '', private: false, owner: 'o' };
      Object.assign(room, { maxMembers: null, createdAt: new Date().toISOString(), metadata: {} });
      await backend.createRoom(room, { userId: 'o', role: 'owner', joinedAt: room.createdAt });
      for (let i = 0; i < perLane; i++) {
        const draft = { id: `${lane}-${i}`, roomId: room.id, userId: 'o', content: 'x'.repeat(100) };
        Object.assign(draft, { metadata: {}, timestamp: new Date().toISOString(), reactions: {} });
        const s = performance.now();
        await backend.appendMessage(room.id, draft, { maxHistory: 1000, publishTopic: `room:${room.id}` });
        samples.push((performance.now() - s) * 1000);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await backend.close();
  samples.sort((a, b) => a - b);
  const at = (p) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))];
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  console.log(
    JSON.stringify({
      appends: samples.length,
      per_s: samples.length / seconds,
      mean_us: mean,
      p50_us: at(50),
      p99_us: at(99),
    }),
  );
}

/** `require` that compiles the checkout's TypeScript with SWC, with the workspace aliases of tsconfig.json. */
function requireTs() {
  const require = createRequire(import.meta.url);
  const Module = require('node:module');
  const { transformSync } = require('@swc/core');
  const { addHook } = require('pirates');
  const aliases = [
    ['@nest-streaming/streaming', 'libs/streaming/src'],
    ['@nest-streaming/client', 'libs/client/src'],
    ['@nest-streaming/protocol', 'libs/protocol/src'],
  ];
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    for (const [name, dir] of aliases)
      if (request === name || request.startsWith(`${name}/`)) {
        request = path.join(ROOT, dir, request.slice(name.length));
        break;
      }
    return resolve.call(this, request, ...rest);
  };
  const jsc = {
    target: 'es2022',
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    keepClassNames: true,
  };
  addHook((code, filename) => transformSync(code, { filename, jsc, module: { type: 'commonjs' } }).code, {
    exts: ['.ts'],
  });
  return require;
}

async function main() {
  if (process.env.BENCH_RC_REPORT_ONLY === '1') {
    // Re-render bench/results/redis-cluster.md from redis-cluster.json (after a change to the report).
    const { mdTable, ms, prettify } = await import('./lib/report.mjs');
    const { resultsDir } = await import('./lib/servers.mjs');
    const report = JSON.parse(fs.readFileSync(path.join(resultsDir, 'redis-cluster.json'), 'utf8'));
    const mdFile = path.join(resultsDir, 'redis-cluster.md');
    fs.writeFileSync(mdFile, render(report, { mdTable, ms }));
    await prettify([mdFile]);
    return;
  }
  const { num, list } = await import('./lib/config.mjs');
  const { BenchClient, messageContent, nowUs, wsUrl } = await import('./lib/client.mjs');
  const { Histogram } = await import('./lib/histogram.mjs');
  const { cpuTimeUs, machineBusyUs } = await import('./lib/proc.mjs');
  const { machine, mdTable, ms, prettify } = await import('./lib/report.mjs');
  const { JWT_SECRET, freePort, log, logsDir, resultsDir, sleep, waitHealthy } =
    await import('./lib/servers.mjs');
  const { createRoom, mintTokens } = await import('./lib/setup.mjs');

  const cfg = {
    setups: list('BENCH_RC_SETUPS', 'single,cluster,cluster-classic,cluster-replicas,cluster-replicas-wait1'),
    rooms: num('BENCH_RC_ROOMS', 60),
    members: num('BENCH_RC_MEMBERS', 4),
    rate: num('BENCH_RC_RATE', 200),
    seconds: num('BENCH_RC_SECONDS', 10),
    warmupSeconds: num('BENCH_RC_WARMUP_SECONDS', 2),
    payload: num('BENCH_PAYLOAD', 100),
    probeAppends: num('BENCH_RC_PROBE_APPENDS', 3000),
  };
  const SETUPS = {
    single: { label: 'single redis-server', redis: 'single', env: {} },
    cluster: { label: 'cluster, 3 masters, sharded pub/sub', redis: 'cluster', replicas: 0, env: {} },
    'cluster-classic': {
      label: 'cluster, 3 masters, classic pub/sub',
      redis: 'cluster',
      replicas: 0,
      env: { FORGE_STREAMING_REDIS_SHARDED_PUBSUB: 'off' },
    },
    'cluster-replicas': {
      label: 'cluster, 3 masters + 3 replicas, sharded',
      redis: 'cluster',
      replicas: 1,
      env: {},
    },
    'cluster-replicas-wait1': {
      label: 'cluster, 3 masters + 3 replicas, sharded, redisWaitReplicas 1',
      redis: 'cluster',
      replicas: 1,
      env: { FORGE_STREAMING_REDIS_WAIT_REPLICAS: '1' },
    },
  };
  for (const s of cfg.setups) if (!SETUPS[s]) throw new Error(`unknown setup "${s}" in BENCH_RC_SETUPS`);
  const API_KEY = 'bench-redis-cluster-api-key-0123456789';
  const NODES = 3;
  fs.mkdirSync(logsDir, { recursive: true });

  /** Children to kill if the run dies. */
  const children = new Set();
  process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));
  const track = (child) => {
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };
  const stopChild = async (child, signal = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(t);
  };
  const cli = (port, ...args) =>
    execFileSync('redis-cli', ['-p', String(port), ...args.map(String)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });

  /** One redis-server (cluster node or not) on free ports, no persistence. */
  async function redisServer(name, clusterMode) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-rc-'));
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    args.push('--dir', dir, '--daemonize', 'no', '--loglevel', 'warning');
    if (clusterMode) {
      args.push('--cluster-enabled', 'yes', '--cluster-port', String(await freePort()));
      args.push('--cluster-config-file', path.join(dir, 'nodes.conf'), '--cluster-node-timeout', '5000');
    }
    const out = fs.openSync(path.join(logsDir, `${name}.log`), 'w');
    const child = track(spawn('redis-server', args, { cwd: dir, stdio: ['ignore', out, out] }));
    fs.closeSync(out);
    for (let i = 0; ; i++) {
      try {
        if (cli(port, 'PING').trim() === 'PONG') break;
      } catch {
        if (i > 100)
          throw new Error(`redis-server on ${port} did not start (apt-get install -y redis-server)`);
      }
      await sleep(50);
    }
    return {
      port,
      pid: child.pid,
      command: `redis-server ${args.map((a) => a || "''").join(' ')}`,
      stop: async () => {
        await stopChild(child);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  /** A single server, or `masters` masters with `replicas` replicas each, joined by redis-cli --cluster create. */
  async function startRedisSetup(setup) {
    if (setup.redis === 'single') {
      const s = await redisServer('rc-redis', false);
      return { servers: [s], urls: [`redis://127.0.0.1:${s.port}`], masters: [s], command: s.command };
    }
    const count = 3 * (1 + setup.replicas);
    const servers = [];
    for (let i = 0; i < count; i++) servers.push(await redisServer(`rc-redis-${i}`, true));
    execFileSync('redis-cli', [
      '--cluster',
      'create',
      ...servers.map((s) => `127.0.0.1:${s.port}`),
      '--cluster-replicas',
      String(setup.replicas),
      '--cluster-yes',
    ]);
    const deadline = Date.now() + 30000;
    for (;;) {
      const ok = servers.every((s) => cli(s.port, 'CLUSTER', 'INFO').includes('cluster_state:ok'));
      const roles = servers.map((s) => cli(s.port, 'INFO', 'replication'));
      const synced = roles.every(
        (r) => !r.includes('role:master') || (r.match(/state=online/g) ?? []).length >= setup.replicas,
      );
      if (ok && synced) break;
      if (Date.now() > deadline) throw new Error('the Redis Cluster did not settle in 30 s');
      await sleep(200);
    }
    const masters = servers.filter((s) => cli(s.port, 'INFO', 'replication').includes('role:master'));
    return {
      servers,
      urls: servers.map((s) => `redis://127.0.0.1:${s.port}`),
      masters,
      command: `${servers.length} × ${servers[0].command
        .replace(/--port \d+/, '--port <p>')
        .replace(/--cluster-port \d+/, '--cluster-port <b>')
        .replace(/--dir \S+/, '--dir <d>')
        .replace(
          /--cluster-config-file \S+/,
          '--cluster-config-file <d>/nodes.conf',
        )}; redis-cli --cluster create <nodes> --cluster-replicas ${setup.replicas} --cluster-yes`,
    };
  }

  /** A demo node (see runApp) on the Redis setup. */
  async function startNode(i, urls, setup) {
    const port = await freePort();
    const env = {
      ...process.env,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      JWT_SECRET,
      FORGE_STREAMING_BACKEND: 'redis',
      FORGE_STREAMING_BACKEND_URLS: urls.join(','),
      FORGE_STREAMING_NODE_ID: `rc-node-${i}`,
      FORGE_STREAMING_HISTORY_STORE: 'memory',
      FORGE_STREAMING_API_KEY: API_KEY,
      FORGE_STREAMING_RATE_LIMIT_REQUESTS_PER_SECOND: '1000000',
      FORGE_STREAMING_RATE_LIMIT_BURST_SIZE: '1000000',
      FORGE_STREAMING_MAX_MESSAGES_PER_SECOND: '1000000',
      FORGE_STREAMING_MAX_ROOMS_OWNED_PER_USER: '100000',
      FORGE_STREAMING_MAX_ROOMS_PER_USER: '100000',
      ...setup.env,
    };
    const out = fs.openSync(path.join(logsDir, `rc-node-${i}.log`), 'w');
    const child = track(
      spawn(process.execPath, [SELF, '--app'], { cwd: ROOT, env, stdio: ['ignore', out, out] }),
    );
    fs.closeSync(out);
    await waitHealthy(`http://127.0.0.1:${port}/_/health/streaming`, 90000);
    return { port, pid: child.pid, stop: () => stopChild(child) };
  }

  const clusterStat = (port, name) =>
    Number(
      new RegExp(`^cluster_stats_messages_${name}:(\\d+)`, 'm').exec(cli(port, 'CLUSTER', 'INFO'))?.[1] ?? 0,
    );

  async function runSetup(id) {
    const setup = SETUPS[id];
    log(`=== ${id}: ${setup.label}`);
    const redis = await startRedisSetup(setup);
    const nodes = [];
    const clients = [];
    try {
      // Start the nodes one after the other: three SWC compilations at once would crowd 2 cores.
      for (let i = 0; i < NODES; i++) nodes.push(await startNode(i, redis.urls, setup));
      log(`  nodes on ${nodes.map((n) => n.port).join(', ')}; redis ${redis.urls.join(' ')}`);
      const host = (r) => r % NODES;
      const poster = (r) => (r + 1) % NODES;

      // Rooms, created on their host node; members connect there and join.
      const [ownerToken] = await mintTokens(['rc-owner']);
      const rooms = [];
      for (let r = 0; r < cfg.rooms; r++)
        rooms.push(await createRoom('ours', nodes[host(r)].port, ownerToken, `rc-${r}`));
      const hist = Array.from({ length: NODES }, () => new Histogram());
      const delivered = Array.from({ length: NODES }, () => 0);
      const tokens = await mintTokens(
        Array.from({ length: cfg.rooms * cfg.members }, (_v, i) => `rc-member-${i}`),
      );
      for (let r = 0; r < cfg.rooms; r++) {
        const node = host(r);
        for (let m = 0; m < cfg.members; m++) {
          const c = new BenchClient(
            'ours',
            wsUrl('ours', nodes[node].port, tokens[r * cfg.members + m]),
            (ph, _seq, latency) => {
              if (ph !== 1) return; // the measured phase only
              delivered[node]++;
              hist[node].record(latency);
            },
          );
          await c.open();
          await c.join(rooms[r]);
          clients.push(c);
        }
      }
      log(`  ${clients.length} members in ${cfg.rooms} rooms`);

      // Posting at a fixed rate, round robin over the rooms, each on the node after its host.
      const sent = Array.from({ length: NODES }, () => 0); // per host node, in the measured phase
      let failures = 0;
      let lastError = null;
      let seq = 0;
      const inflight = new Set();
      const post = (r, ph) => {
        const content = messageContent(ph, ++seq, cfg.payload);
        if (ph === 1) sent[host(r)]++;
        const p = fetch(
          `http://127.0.0.1:${nodes[poster(r)].port}/_/streaming/api/rooms/${rooms[r]}/messages`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `apikey ${API_KEY}` },
            body: JSON.stringify({ content, user_id: 'rc-poster' }),
            signal: AbortSignal.timeout(10000),
          },
        )
          .then(async (res) => {
            if (res.status !== 201) throw new Error(`HTTP ${res.status} ${await res.text()}`);
            await res.arrayBuffer();
          })
          .catch((err) => {
            failures++;
            lastError = String(err.message ?? err);
          })
          .finally(() => inflight.delete(p));
        inflight.add(p);
      };
      const runPhase = async (ph, seconds) => {
        const total = Math.round(cfg.rate * seconds);
        const t0 = performance.now();
        let r = 0;
        for (let i = 0; i < total; i++) {
          const due = t0 + (i * 1000) / cfg.rate;
          const wait = due - performance.now();
          if (wait > 1) await sleep(wait);
          post(r, ph);
          r = (r + 1) % cfg.rooms;
        }
        return performance.now() - t0;
      };

      const procs = [
        ...nodes.map((n, i) => ({ label: `node ${i}`, pid: n.pid })),
        ...redis.servers.map((s) => ({ label: `redis ${s.port}`, pid: s.pid })),
      ];
      await runPhase(2, cfg.warmupSeconds); // warm-up: phase 2 is not counted
      await Promise.all(inflight);
      await sleep(500);
      const bus = (name) =>
        Object.fromEntries(
          redis.masters.map((m) => [m.port, setup.redis === 'single' ? 0 : clusterStat(m.port, name)]),
        );
      const before = {
        cpu: procs.map((p) => cpuTimeUs(p.pid).total),
        busy: machineBusyUs(),
        self: process.cpuUsage(),
        publish: bus('publish_sent'),
        publishshard: bus('publishshard_sent'),
        at: nowUs(),
      };
      const sendMs = await runPhase(1, cfg.seconds);
      await Promise.all(inflight);
      const expected = sent.reduce((a, b) => a + b, 0) * cfg.members;
      const drainUntil = Date.now() + 5000;
      while (
        delivered.reduce((a, b) => a + b, 0) < expected - failures * cfg.members &&
        Date.now() < drainUntil
      )
        await sleep(50);
      const elapsedUs = nowUs() - before.at;
      const cpu = procs.map((p, i) => ({
        label: p.label,
        ms: (cpuTimeUs(p.pid).total - before.cpu[i]) / 1000,
      }));
      const selfCpu = process.cpuUsage(before.self);
      const ourCpuUs = cpu.reduce((a, c) => a + c.ms * 1000, 0) + selfCpu.user + selfCpu.system;
      const foreignCores = Math.max(0, machineBusyUs() - before.busy - ourCpuUs) / elapsedUs;
      const after = { publish: bus('publish_sent'), publishshard: bus('publishshard_sent') };
      const all = hist.reduce((acc, h) => acc.merge(h), new Histogram());
      return {
        id,
        label: setup.label,
        redis: redis.command,
        send_ms: sendMs,
        posted: sent.reduce((a, b) => a + b, 0),
        failures,
        last_error: lastError,
        expected,
        delivered: delivered.reduce((a, b) => a + b, 0),
        latency: all.summary(),
        per_node: nodes.map((_n, i) => ({
          node: i,
          rooms_hosted: rooms.filter((_r, r) => host(r) === i).length,
          messages: sent[i],
          deliveries: delivered[i],
          expected: sent[i] * cfg.members,
          latency: hist[i].summary(),
        })),
        cpu_ms: Object.fromEntries(cpu.map((c) => [c.label, c.ms])),
        app_cpu_ms: cpu.filter((c) => c.label.startsWith('node')).reduce((a, c) => a + c.ms, 0),
        redis_cpu_ms: cpu.filter((c) => c.label.startsWith('redis')).reduce((a, c) => a + c.ms, 0),
        foreign_cores: foreignCores,
        bus:
          setup.redis === 'single'
            ? null
            : Object.fromEntries(
                redis.masters.map((m) => [
                  m.port,
                  {
                    publish_sent: after.publish[m.port] - before.publish[m.port],
                    publishshard_sent: after.publishshard[m.port] - before.publishshard[m.port],
                  },
                ]),
              ),
      };
    } finally {
      for (const c of clients) c.close();
      for (const n of nodes) await n.stop();
      for (const s of redis.servers) await s.stop();
    }
  }

  /** appendProbe (one child per run) on 3 masters + 3 replicas, waitReplicas 0 and 1 interleaved, twice. */
  async function runProbe() {
    log('=== append probe: redisWaitReplicas 0 against 1, 3 masters + 3 replicas');
    const redis = await startRedisSetup({ redis: 'cluster', replicas: 1 });
    try {
      const rows = [];
      for (const round of [1, 2])
        for (const lanes of [1, 16])
          for (const waitReplicas of [0, 1]) {
            const spec = {
              urls: redis.urls,
              waitReplicas,
              lanes,
              perLane: Math.ceil(cfg.probeAppends / lanes),
            };
            const out = execFileSync(process.execPath, [SELF, '--append-probe', JSON.stringify(spec)], {
              cwd: ROOT,
              encoding: 'utf8',
            });
            rows.push({ round, waitReplicas, lanes, ...JSON.parse(out.trim().split('\n').pop()) });
          }
      return { redis: redis.command, rows };
    } finally {
      for (const s of redis.servers) await s.stop();
    }
  }

  const loadBefore = os.loadavg();
  const started = Date.now();
  const results = [];
  for (const id of cfg.setups) {
    try {
      results.push(await runSetup(id));
    } catch (err) {
      log(`${id} FAILED: ${err.stack ?? err}`);
      results.push({ id, label: SETUPS[id].label, error: String(err.message ?? err) });
    }
  }
  let probe = null;
  if (cfg.probeAppends > 0) {
    try {
      probe = await runProbe();
    } catch (err) {
      log(`append probe FAILED: ${err.stack ?? err}`);
      probe = { error: String(err.message ?? err) };
    }
  }
  const env = Object.keys(process.env)
    .filter((k) => k.startsWith('BENCH_'))
    .sort()
    .map((k) => `${k}=${process.env[k]}`);
  const report = {
    finished_at: new Date().toISOString(),
    duration_s: (Date.now() - started) / 1000,
    command: [...env, 'node bench/redis-cluster.mjs'].join(' '),
    machine: machine(),
    load_average_before: loadBefore.map((l) => +l.toFixed(2)),
    config: cfg,
    results,
    probe,
  };
  const jsonFile = path.join(resultsDir, 'redis-cluster.json');
  const mdFile = path.join(resultsDir, 'redis-cluster.md');
  fs.writeFileSync(jsonFile, JSON.stringify(report, null, 2));
  fs.writeFileSync(mdFile, render(report, { mdTable, ms }));
  await prettify([jsonFile, mdFile]);
  console.log(fs.readFileSync(mdFile, 'utf8'));
  if (results.some((r) => r.error)) process.exitCode = 1;
}

/** Other processes' CPU (cores) from which a setup's latencies count as disturbed (as in run.mjs). */
const DISTURBED_CORES = 0.3;

/** bench/results/redis-cluster.md, a section of bench/RESULTS.md. */
function render(report, { mdTable, ms }) {
  const c = report.config;
  const ok = report.results.filter((r) => !r.error);
  const base = ok.find((r) => r.id === 'single');
  const lines = [
    '## Redis Cluster against a single Redis (`bench/redis-cluster.mjs`, issue 16)',
    '',
    `- ran ${report.finished_at} (${Math.round(report.duration_s)} s) on ${report.machine.nproc} cores (${report.machine.cpu_model}), node ${report.machine.node}; load average before: ${report.load_average_before.join(', ')}`,
    `- command: \`${report.command}\``,
    '',
    `Three demo nodes (this checkout's sources) on the Redis backend; ${c.rooms} rooms, room r hosted by node r % 3 ` +
      `(its ${c.members} members connected there, so only that node subscribes to it), its messages posted on ` +
      `node (r + 1) % 3 through the server API: every message crosses Redis. ${c.rate} messages/s in all for ` +
      `${c.seconds} s after ${c.warmupSeconds} s of warm-up, ${c.payload}-byte contents; latency from the POST to ` +
      'the frame at a member. redis-server without persistence. Every process shares the 2 cores, so the ' +
      'latencies are mostly scheduling: compare the setups with each other, not with other sections.',
    '',
    mdTable([
      [
        'setup',
        'delivered / expected',
        'p50 ms',
        'p99 ms',
        'max ms',
        'app CPU ms',
        'redis CPU ms',
        'other load (cores)',
      ],
      ...report.results.map((r) =>
        r.error
          ? [r.label, `failed: ${r.error}`, '', '', '', '', '', '']
          : [
              r.label,
              `${r.delivered} / ${r.expected}${r.failures ? ` (${r.failures} posts failed)` : ''}` +
                (r.foreign_cores >= DISTURBED_CORES ? ' (disturbed)' : ''),
              ms(r.latency.p50_us),
              ms(r.latency.p99_us),
              ms(r.latency.max_us),
              r.app_cpu_ms.toFixed(0),
              r.redis_cpu_ms.toFixed(0),
              r.foreign_cores.toFixed(2),
            ],
      ),
    ]),
    '',
    '"disturbed": other processes of the machine used 0.3 cores or more during that setup (last column): ' +
      'its latencies are then mostly queueing behind them, not comparable with the quiet rows.',
    '',
    'Per node (each node receives the messages of the rooms it hosts, and nothing else):',
    '',
    mdTable([
      ['setup', ...[0, 1, 2].map((i) => `node ${i}: messages, deliveries, p99 ms`)],
      ...ok.map((r) => [
        r.label,
        ...r.per_node.map((n) => `${n.messages}, ${n.deliveries} / ${n.expected}, ${ms(n.latency.p99_us)}`),
      ]),
    ]),
    '',
    'Cluster bus, per master during the measured phase (`CLUSTER INFO`: `cluster_stats_messages_publish_sent` ' +
      'is classic PUBLISH forwarded to every other node; `publishshard_sent`, SPUBLISH forwarded to the ' +
      "shard's own replicas):",
    '',
    mdTable([
      ['setup', 'classic publish sent', 'sharded publish sent'],
      ...ok
        .filter((r) => r.bus)
        .map((r) => [
          r.label,
          Object.values(r.bus)
            .map((b) => b.publish_sent)
            .join(' / '),
          Object.values(r.bus)
            .map((b) => b.publishshard_sent)
            .join(' / '),
        ]),
    ]),
    '',
  ];
  const p = report.probe;
  if (p?.rows) {
    lines.push(
      `The cost of the replica wait alone: \`appendMessage\` (with its publish) through one RedisBackend, no app ` +
        `around it, on 3 masters + 3 replicas; ${c.probeAppends} appends per run, one after the other in one room ` +
        'or in 16 rooms at once; `redisWaitReplicas` 0 and 1 interleaved, two rounds.',
      '',
      mdTable([
        ['redisWaitReplicas', 'rooms at once', 'round', 'appends/s', 'mean µs', 'p50 µs', 'p99 µs'],
        ...p.rows.map((r) => [
          String(r.waitReplicas),
          String(r.lanes),
          String(r.round),
          r.per_s.toFixed(0),
          r.mean_us.toFixed(0),
          r.p50_us.toFixed(0),
          r.p99_us.toFixed(0),
        ]),
      ]),
      '',
    );
  } else if (p?.error) lines.push(`The append probe failed: ${p.error}`, '');
  const get = (id) => ok.find((r) => r.id === id);
  const notes = [];
  const sharded = get('cluster');
  const classic = get('cluster-classic');
  if (sharded && classic) {
    const s = Object.values(sharded.bus).reduce((a, b) => a + b.publish_sent + b.publishshard_sent, 0);
    const k = Object.values(classic.bus).reduce((a, b) => a + b.publish_sent + b.publishshard_sent, 0);
    notes.push(
      `- Sharded against classic pub/sub on the 3 masters: ${s} against ${k} bus messages for ${sharded.posted} ` +
        `and ${classic.posted} posts; p99 ${ms(sharded.latency.p99_us)} against ${ms(classic.latency.p99_us)} ms, ` +
        `redis CPU ${sharded.redis_cpu_ms.toFixed(0)} against ${classic.redis_cpu_ms.toFixed(0)} ms.`,
    );
  }
  if (base && sharded)
    notes.push(
      `- Cluster (sharded) against one redis-server: p99 ${ms(sharded.latency.p99_us)} against ${ms(base.latency.p99_us)} ms, ` +
        `redis CPU ${sharded.redis_cpu_ms.toFixed(0)} ms over 3 processes against ${base.redis_cpu_ms.toFixed(0)} ms in one.`,
    );
  const r0 = get('cluster-replicas');
  const r1 = get('cluster-replicas-wait1');
  if (r0 && r1)
    notes.push(
      `- Fan-out with the replica wait (\`redisWaitReplicas: 1\`) against without, 3 masters + 3 replicas: p50 ` +
        `${ms(r1.latency.p50_us)} against ${ms(r0.latency.p50_us)} ms, p99 ${ms(r1.latency.p99_us)} against ` +
        `${ms(r0.latency.p99_us)} ms, redis CPU ${r1.redis_cpu_ms.toFixed(0)} against ${r0.redis_cpu_ms.toFixed(0)} ms.`,
    );
  const probeRows = p?.rows ?? [];
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const probeOf = (wait, lanes, key) =>
    mean(probeRows.filter((r) => r.waitReplicas === wait && r.lanes === lanes).map((r) => r[key]));
  if (probeRows.length)
    notes.push(
      `- The replica wait alone, one append after the other: p50 ${probeOf(1, 1, 'p50_us').toFixed(0)} against ` +
        `${probeOf(0, 1, 'p50_us').toFixed(0)} µs per append (the WAIT round trip and the outbox script), ` +
        `${probeOf(1, 1, 'per_s').toFixed(0)} against ${probeOf(0, 1, 'per_s').toFixed(0)} appends/s; 16 rooms at once: ` +
        `${probeOf(1, 16, 'per_s').toFixed(0)} against ${probeOf(0, 16, 'per_s').toFixed(0)} appends/s (means of the two rounds).`,
    );
  if (notes.length) lines.push(...notes, '');
  return lines.join('\n');
}
