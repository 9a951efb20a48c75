// redis2: two nodes of the demo on a real redis-server (started here on a free
// port, stopped after), subscribers split over both nodes, one publisher on the
// first node: steady-rate fan-out across nodes. Socket.IO runs the same load
// on one node as the reference (it has no cluster here).
import { common, num } from '../lib/config.mjs';
import { describePhase } from '../lib/phase.mjs';
import { disturbed, f, foreignLoadWarning, mdTable, ms, ratio, x } from '../lib/report.mjs';
import { attempt, log, startRedis, startServer, waitHealthy } from '../lib/servers.mjs';
import { closeFanout, openFanout } from '../lib/setup.mjs';
import { rateRun } from './rate.mjs';

const cfg = {
  subscribers: num('BENCH_REDIS2_SUBSCRIBERS', 2000),
  rate: num('BENCH_REDIS2_RATE', 20),
  seconds: num('BENCH_REDIS2_SECONDS', 10),
  clientProcs: Math.max(2, common.clientProcs),
  warmupSeconds: num('BENCH_RATE_WARMUP_SECONDS', 2),
  via: process.env.BENCH_RATE_VIA === 'room' ? 'room' : 'channel',
  payload: num('BENCH_PAYLOAD', 100),
  stallMs: Math.min(common.stallMs, 10000),
  reference: common.servers.includes('socketio'),
};

async function cluster() {
  const redis = await startRedis();
  const nodes = [];
  let session = null;
  try {
    log(`redis-server on 127.0.0.1:${redis.port}`);
    for (const i of [1, 2])
      nodes.push(
        await startServer('ours', {
          name: `redis2-ours-node${i}`,
          env: {
            FORGE_STREAMING_BACKEND: 'redis',
            FORGE_STREAMING_BACKEND_URLS: redis.url,
            FORGE_STREAMING_NODE_ID: `bench-node-${i}`,
          },
        }),
      );
    await Promise.all(nodes.map((n) => waitHealthy(`http://127.0.0.1:${n.port}/_/health/streaming`)));
    log(`two demo nodes on 127.0.0.1:${nodes[0].port} and :${nodes[1].port}`);
    session = await openFanout({
      kind: 'ours',
      senderPort: nodes[0].port,
      // Worker i holds its share of the subscribers on node i % 2.
      receiverPort: (i) => nodes[i % 2].port,
      n: cfg.subscribers,
      procs: cfg.clientProcs,
      via: cfg.via,
    });
    const servers = [
      { label: 'node 1', pid: nodes[0].pid },
      { label: 'node 2', pid: nodes[1].pid },
      { label: 'redis-server', pid: redis.pid },
    ];
    const r = await rateRun({ kind: 'ours', servers, session, cfg });
    return {
      ...r,
      label: 'nest-streaming, 2 nodes on redis',
      command: nodes.map((n) => n.command).join(' & '),
      redis: redis.command,
      connected: session.connect.connected,
      joined: session.receivers,
    };
  } finally {
    await closeFanout(session);
    for (const n of nodes) await n.stop();
    await redis.stop();
  }
}

async function single(kind) {
  const server = await startServer(kind, { name: `redis2-${kind}` });
  log(`${server.label} (${kind}) on 127.0.0.1:${server.port}, one node (reference)`);
  let session = null;
  try {
    session = await openFanout({
      kind,
      senderPort: server.port,
      n: cfg.subscribers,
      procs: cfg.clientProcs,
      via: cfg.via,
    });
    const r = await rateRun({ kind, servers: [server], session, cfg });
    return {
      ...r,
      label: `${server.label}, 1 node`,
      command: server.command,
      connected: session.connect.connected,
      joined: session.receivers,
    };
  } finally {
    await closeFanout(session);
    await server.stop();
  }
}

async function run() {
  if (!common.servers.includes('ours'))
    return { config: cfg, results: [], skipped: 'BENCH_SERVERS does not include ours' };
  const results = [];
  if (cfg.reference) results.push(await attempt('socketio', () => single('socketio')));
  results.push(await attempt('ours', cluster));
  return { config: cfg, results };
}

function tableRows(data) {
  const by = Object.fromEntries(data.results.filter((r) => !r.error).map((r) => [r.kind, r.phases.rate]));
  const head = [
    'server',
    'p50 ms',
    'p99 ms',
    'p99 vs socket.io',
    'CPU µs/delivery (all processes)',
    'complete',
  ];
  const rows = data.results.map((r) => {
    if (r.error) return [r.label, `failed: ${r.error}`, '', '', '', ''];
    const p = r.phases.rate;
    return [
      r.label,
      ms(p.latency.p50_us),
      ms(p.latency.p99_us),
      r.kind === 'socketio' ? '1' : x(ratio(p.latency.p99_us, by.socketio?.latency.p99_us)),
      f(p.server_cpu_us_per_delivery, 3),
      p.complete ? 'yes' : '**no**',
    ];
  });
  return [head, ...rows];
}

function render(data) {
  if (data.skipped) return [`Skipped: ${data.skipped}.`, ''];
  const c = data.config;
  const lines = [
    `${c.subscribers} subscribers of one ${c.via}, half on each of two demo nodes (\`FORGE_STREAMING_BACKEND=redis\`, one redis-server started by the bench), ` +
      `the publisher (also a subscriber) on node 1: ${c.rate} messages/s for ${c.seconds} s after ${c.warmupSeconds} s of warm-up. ` +
      'CPU per delivery counts both nodes and redis-server. ' +
      (c.reference ? 'Socket.IO: the same load on one node.' : ''),
    '',
    mdTable(tableRows(data)),
    '',
  ];
  lines.push(...foreignLoadWarning(data.results));
  for (const r of data.results) {
    if (r.error) continue;
    lines.push(`- **${r.label}**: \`${r.command}\`${r.redis ? `; \`${r.redis}\`` : ''}`);
    for (const p of Object.values(r.phases)) {
      const by = p.server_cpu_by_process_ms;
      lines.push(
        `  - ${p.name}: ${describePhase(p)}` +
          (by
            ? `; CPU by process: ${Object.entries(by)
                .map(([k, v]) => `${k} ${v.toFixed(0)} ms`)
                .join(', ')}`
            : ''),
      );
    }
  }
  lines.push('');
  return lines;
}

function targets(data) {
  const by = Object.fromEntries(data.results.filter((r) => !r.error).map((r) => [r.kind, r.phases.rate]));
  const r = ratio(by.ours?.latency.p99_us, by.socketio?.latency.p99_us);
  const c = data.config;
  return [
    {
      what: `2 nodes on Redis, ${c.subscribers} subs, ${c.rate} msg/s: p99 ms`,
      ws: '–',
      socketio: by.socketio ? `${ms(by.socketio.latency.p99_us)} (1 node)` : undefined,
      ours: by.ours ? ms(by.ours.latency.p99_us) : undefined,
      vs: r === null ? 'n/a' : `${r.toFixed(2)}× socket.io`,
      target: '≤ socket.io',
      met: r === null ? null : r <= 1 && by.ours.complete,
      disturbed: disturbed(by.ours, by.socketio),
    },
  ];
}

export default {
  id: 'redis2',
  title: `Two nodes on redis-server: ${cfg.subscribers} subscribers × ${cfg.rate} msg/s`,
  config: cfg,
  run,
  render,
  targets,
  summary: (data) => ({ rows: tableRows(data), notes: [] }),
};
