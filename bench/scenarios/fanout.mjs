// fanout: the original benchmark. One room of BENCH_CONNECTIONS receivers plus
// the sender; idle memory per connection; a max-load phase with an end-to-end
// window and a fixed-rate phase; then one more run of the demo under --cpu-prof.
import fs from 'node:fs';
import path from 'node:path';
import { common, num } from '../lib/config.mjs';
import { runPhase, describePhase } from '../lib/phase.mjs';
import { analyzeProfile } from '../lib/profile.mjs';
import { rssBytes } from '../lib/proc.mjs';
import { disturbed, f, foreignLoadWarning, mdTable, ms, ratio, ratioText } from '../lib/report.mjs';
import { attempt, log, root, sleep, startServer } from '../lib/servers.mjs';
import { createRoom, login, mintTokens, openClient, route, warmUp } from '../lib/setup.mjs';
import { Workers } from '../lib/workers.mjs';

const cfg = {
  connections: num('BENCH_CONNECTIONS', 1000),
  messages: num('BENCH_MESSAGES', 2000),
  window: num('BENCH_WINDOW', 32),
  rate: num('BENCH_RATE', 20),
  rateMessages: num('BENCH_RATE_MESSAGES', 200),
  warmup: num('BENCH_WARMUP', 100),
  profileMessages: num('BENCH_PROFILE_MESSAGES', 600),
  warmConnections: common.warmConnections,
  connectConcurrency: common.connectConcurrency,
  payload: num('BENCH_PAYLOAD', 100),
  clientProcs: common.clientProcs,
  stallMs: common.stallMs,
  profile: process.env.BENCH_PROFILE !== '0',
  servers: common.servers,
};

async function benchServer(
  kind,
  {
    profile = false,
    phases = ['warmup', 'throughput', 'rate'],
    messages = cfg.messages,
    measureIdle = true,
  } = {},
) {
  const server = await startServer(kind, { profile, name: `fanout-${kind}` });
  const { port } = server;
  log(`${server.label} (${kind})${profile ? ' with --cpu-prof' : ''} on 127.0.0.1:${port}`);
  const result = { kind, label: server.label, command: server.command, profile };
  let workers = null;
  let sender = null;
  try {
    const n = cfg.connections;
    const senderToken = await login(kind, port, 'bench-sender');
    const tokens =
      kind === 'ours' ? await mintTokens(Array.from({ length: n }, (_v, i) => `bench-${i}`)) : null;
    const roomId = await createRoom(kind, port, senderToken, 'bench');
    sender = await openClient(kind, port, senderToken);
    await sender.join(roomId);

    // One-time costs of the first connections must not be charged to the idle connections.
    if (measureIdle) await warmUp(kind, port, Math.min(cfg.warmConnections, n), cfg.connectConcurrency);
    // Idle memory: RSS with the sender only, then with N idle (connected, not yet joined) connections.
    const mem0 = measureIdle ? await server.memory() : null;
    const procs = Math.min(cfg.clientProcs, Math.max(1, n));
    workers = new Workers(procs);
    const share = (i) => workers.share(n, i).count;
    const offset = (i) => workers.share(n, i).offset;
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
        600000,
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
    if (connected === 0) throw new Error(`no connection could be opened: ${firstError}`);
    const [memHalf, memN] = mems;
    const heapOf = (m) => m.heapUsed + m.external;
    if (measureIdle) {
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
      log(
        `  idle: RSS ${(mem0.rss / 2 ** 20).toFixed(1)} -> ${(memHalf.rss / 2 ** 20).toFixed(1)} -> ${(memN.rss / 2 ** 20).toFixed(1)} MiB = ` +
          `${(result.idle.rss_per_connection_bytes / 1024).toFixed(1)} KB/connection ` +
          `(second half alone ${(result.idle.rss_per_connection_second_half_bytes / 1024).toFixed(1)} KB; ` +
          `heap+external ${(result.idle.heap_per_connection_bytes / 1024).toFixed(1)} KB/connection)`,
      );
    }

    const joined = await workers.join({ request: 'join_room', targets: [roomId], n });
    log(
      `  joined the room in ${joined.ms} ms${joined.failed ? `, ${joined.failed} joins failed: ${joined.firstError}` : ''}`,
    );
    result.join_ms = joined.ms;
    await sleep(1000);

    const r = route('room', roomId);
    const ctx = {
      servers: [server],
      workers,
      sender,
      receivers: connected,
      publish: (content) => r.publish(sender, content),
    };
    const phaseOpts = { payload: cfg.payload, stallMs: cfg.stallMs };
    result.phases = {};
    if (phases.includes('warmup') && cfg.warmup > 0)
      result.phases.warmup = await runPhase(ctx, {
        ...phaseOpts,
        name: 'warmup',
        mode: 'window',
        m: cfg.warmup,
        window: cfg.window,
      });
    if (phases.includes('throughput') && messages > 0)
      result.phases.throughput = await runPhase(ctx, {
        ...phaseOpts,
        name: 'throughput',
        mode: 'window',
        m: messages,
        window: cfg.window,
      });
    if (phases.includes('rate') && cfg.rateMessages > 0 && cfg.rate > 0)
      result.phases.rate = await runPhase(ctx, {
        ...phaseOpts,
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
    const files = fs.readdirSync(server.profileDir).filter((x) => x.endsWith('.cpuprofile'));
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

function comparisons(results) {
  const by = Object.fromEntries(results.map((r) => [r.kind, r]));
  const out = [];
  const cmp = (a, b, phase, what) => {
    const r = ratio(
      by[a]?.phases?.[phase]?.server_cpu_us_per_delivery,
      by[b]?.phases?.[phase]?.server_cpu_us_per_delivery,
    );
    if (r !== null) out.push({ what, phase, a, b, ratio: r });
  };
  for (const phase of ['throughput', 'rate']) {
    cmp('ours', 'ws-bare', phase, 'CPU per delivery, ours / bare ws loop');
    cmp('ours', 'socketio', phase, 'CPU per delivery, ours / NestJS+socket.io');
    cmp('socketio', 'ws-bare', phase, 'CPU per delivery, NestJS+socket.io / bare ws loop');
  }
  const rss = (k) => by[k]?.idle?.rss_per_connection_bytes;
  for (const [b, name] of [
    ['ws-bare', 'bare ws loop'],
    ['socketio', 'NestJS+socket.io'],
  ]) {
    const r = ratio(rss('ours'), rss(b));
    if (r !== null) out.push({ what: `RSS per idle connection, ours / ${name}`, ratio: r });
  }
  return out;
}

function tableRows(data) {
  const head = [
    'server',
    'CPU µs/delivery (max load)',
    'deliveries/s',
    'p50 ms',
    'p99 ms',
    'msgs/frame',
    `CPU µs/delivery (${data.config.rate} msg/s)`,
    'p50 ms @rate',
    'p99 ms @rate',
    'KB RSS/idle conn',
    'KB heap/idle conn',
  ];
  const rows = data.results
    .filter((r) => !r.error)
    .map((r) => {
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

function render(data) {
  const { config: c, results, comparisons: comps, profile } = data;
  const lines = [];
  lines.push('### Workload', '');
  lines.push(
    `- ${c.connections} receiving connections (${c.clientProcs} client processes) + 1 sender connection, all members of one room: every message is delivered ${c.connections + 1} times`,
    `- max load: ${c.messages} messages, sender keeps at most ${c.window} messages not yet received by every connection (end-to-end window), after ${c.warmup} warm-up messages`,
    `- fixed rate: ${c.rateMessages} messages at ${c.rate} messages/s (${c.rate * (c.connections + 1)} deliveries/s)`,
    `- message content ${c.payload} characters; each server broadcasts the same message object shape (id, seq, room_id, user_id, content, metadata, timestamp, reactions)`,
    '- idle memory = (RSS with N idle connections - RSS with 0) / N, each read 0.7 s after two forced GCs',
    '',
  );
  lines.push('### Results', '');
  lines.push(mdTable(tableRows(data)), '');
  lines.push(
    '"max load" = the throughput phase (end-to-end window); "msgs/frame" = benchmark messages per WebSocket frame received by the clients in that phase (1.00 = no batching).',
    '',
  );
  lines.push(...foreignLoadWarning(results));
  for (const r of results.filter((x) => x.error)) lines.push(`**${r.label} failed:** ${r.error}`, '');
  lines.push('### Comparisons', '');
  for (const x of comps)
    lines.push(
      `- ${x.what}${x.phase ? ` (${x.phase === 'throughput' ? 'max load' : 'fixed rate'})` : ''}: ${ratioText(x.ratio)}`,
    );
  lines.push('');
  lines.push('### Details per server', '');
  for (const r of results.filter((x) => !x.error)) {
    lines.push(`- **${r.label}**: \`${r.command}\``);
    if (r.idle)
      lines.push(
        `  - idle: ${r.idle.connections} connections, RSS ${(r.idle.rss_base_bytes / 2 ** 20).toFixed(1)} -> ` +
          `${(r.idle.half.rss / 2 ** 20).toFixed(1)} (${r.idle.half.connections}) -> ${(r.idle.rss_idle_bytes / 2 ** 20).toFixed(1)} MiB: ` +
          `${(r.idle.rss_per_connection_bytes / 1024).toFixed(1)} KB/connection (second half alone ` +
          `${(r.idle.rss_per_connection_second_half_bytes / 1024).toFixed(1)} KB), V8 heap + external ` +
          `${(r.idle.heap_per_connection_bytes / 1024).toFixed(1)} KB/connection`,
      );
    if (r.join_ms !== undefined) lines.push(`  - ${r.idle?.connections ?? ''} joins took ${r.join_ms} ms`);
    for (const p of Object.values(r.phases ?? {})) lines.push(`  - ${p.name}: ${describePhase(p)}`);
  }
  lines.push('');
  if (profile?.profile_analysis) {
    const pa = profile.profile_analysis;
    lines.push('### CPU profile of nest-streaming (separate run with --cpu-prof)', '');
    lines.push(
      `File \`${profile.profile_file}\` (written by the run, not committed; open it in Chrome DevTools or speedscope). ` +
        `Scope: ${pa.scope}, ${pa.samplesInWindow} samples (${pa.windowMs} ms of CPU). ` +
        `That run's throughput phase: ${f(profile.phases?.throughput?.server_cpu_us_per_delivery, 3)} µs/delivery (with the profiler's overhead).`,
      '',
    );
    lines.push('#### Top self time', '', '| function | self ms | % |', '| --- | ---: | ---: |');
    for (const x of pa.self) lines.push(`| \`${x.name}\` | ${x.ms} | ${x.pct} |`);
    lines.push(
      '',
      '#### Top total (inclusive) time',
      '',
      '| function | total ms | % |',
      '| --- | ---: | ---: |',
    );
    for (const x of pa.total) lines.push(`| \`${x.name}\` | ${x.ms} | ${x.pct} |`);
    lines.push('', '#### Self time by package / area', '', '| area | self ms | % |', '| --- | ---: | ---: |');
    for (const x of pa.areas) lines.push(`| ${x.name} | ${x.ms} | ${x.pct} |`);
    lines.push('');
  }
  return lines;
}

/** Rows of the summary table (issue 10's targets). */
function targets(data) {
  const by = Object.fromEntries(data.results.filter((r) => !r.error).map((r) => [r.kind, r]));
  const cpu = (k) => by[k]?.phases?.throughput?.server_cpu_us_per_delivery;
  const r = ratio(cpu('ours'), cpu('ws-bare'));
  return [
    {
      what: `burst (max load), ${data.config.connections} subs: CPU µs/delivery`,
      ws: f(cpu('ws-bare'), 2),
      socketio: f(cpu('socketio'), 2),
      ours: f(cpu('ours'), 2),
      vs: r === null ? 'n/a' : `${r.toFixed(2)}× ws`,
      target: 'keep ≤ 0.2× ws',
      met: r === null ? null : r <= 0.2,
      disturbed: disturbed(...['ws-bare', 'ours'].map((k) => by[k]?.phases?.throughput)),
    },
  ];
}

function summary(data) {
  const rows = tableRows(data);
  return {
    rows,
    notes: data.comparisons.map((x) => `${x.what}${x.phase ? ` (${x.phase})` : ''}: ${x.ratio.toFixed(2)}x`),
  };
}

async function run() {
  const results = [];
  for (const kind of cfg.servers) results.push(await attempt(kind, () => benchServer(kind)));
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
  return { config: cfg, results, comparisons: comparisons(results), profile };
}

export default {
  id: 'fanout',
  title: 'Fan-out in one room: max load, fixed rate, idle memory',
  config: cfg,
  run,
  render,
  targets,
  summary,
};
