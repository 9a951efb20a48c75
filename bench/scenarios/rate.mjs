// rate2000 / rate10k: steady-rate fan-out on a channel (issue 10's "Steady-rate
// speed"): one publisher, N subscribers, R messages/s open loop, after a short
// warm-up at the same rate. Server CPU per delivery and latency p50/p99.
// BENCH_ROUNDS > 1 repeats every server that many times, interleaved, and
// reports medians with the range.
import { common, num } from '../lib/config.mjs';
import { describePhase, runPhase } from '../lib/phase.mjs';
import { disturbed, f, foreignLoadWarning, mdTable, ms, ratio, ratioText, x } from '../lib/report.mjs';
import { SERVERS, attempt, log, sleep, startServer } from '../lib/servers.mjs';
import { closeFanout, openFanout } from '../lib/setup.mjs';

export const median = (v) => {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const range = (v) => {
  const s = v.filter(Number.isFinite);
  return s.length > 1 ? [Math.min(...s), Math.max(...s)] : null;
};

/** One steady-rate fan-out on one server (or a cluster, given `open`): returns its phases. */
export async function rateRun({ kind, servers, session, cfg }) {
  const ctx = { servers, workers: session.workers, sender: session.sender, receivers: session.receivers };
  ctx.publish = session.publish;
  const opts = { mode: 'rate', rate: cfg.rate, payload: cfg.payload, stallMs: cfg.stallMs };
  const phases = {};
  await sleep(500);
  if (cfg.warmupSeconds > 0)
    phases.warmup = await runPhase(ctx, {
      ...opts,
      name: 'warmup',
      m: Math.max(1, Math.round(cfg.rate * cfg.warmupSeconds)),
    });
  phases.rate = await runPhase(ctx, {
    ...opts,
    name: 'rate',
    m: Math.max(1, Math.round(cfg.rate * cfg.seconds)),
  });
  return { kind, phases };
}

export function rateScenario({ id, prefix, subscribers, rate, seconds, procs }) {
  const cfg = {
    subscribers: num(`${prefix}_SUBSCRIBERS`, subscribers),
    rate: num(`${prefix}_RATE`, rate),
    seconds: num(`${prefix}_SECONDS`, seconds),
    clientProcs: num(`${prefix}_CLIENT_PROCS`, procs),
    warmupSeconds: num('BENCH_RATE_WARMUP_SECONDS', 2),
    via: process.env.BENCH_RATE_VIA === 'room' ? 'room' : 'channel',
    rounds: Math.max(1, num('BENCH_ROUNDS', 1)),
    payload: num('BENCH_PAYLOAD', 100),
    stallMs: Math.min(common.stallMs, 10000),
    servers: common.servers,
  };

  async function one(kind, round) {
    // BENCH_RATE_PROFILE=1: nest-streaming runs under --cpu-prof (bench/results/profiles/<id>-ours).
    const profile = process.env.BENCH_RATE_PROFILE === '1' && kind === 'ours';
    const server = await startServer(kind, { name: `${id}-${kind}`, profile });
    log(`${server.label} (${kind}) on 127.0.0.1:${server.port}, round ${round + 1}/${cfg.rounds}`);
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
        label: server.label,
        round,
        command: server.command,
        connected: session.connect.connected,
        connect_ms: session.connect.ms,
        joined: session.receivers,
        join_ms: session.join.ms,
      };
    } finally {
      await closeFanout(session);
      await server.stop();
    }
  }

  async function run() {
    const results = [];
    for (let round = 0; round < cfg.rounds; round++)
      for (const kind of cfg.servers) results.push(await attempt(kind, () => one(kind, round), { round }));
    return { config: cfg, results };
  }

  /** Per server: median (and range over rounds) of CPU/delivery, p50 and p99 of the rate phase. */
  function stats(data) {
    const out = {};
    for (const kind of data.config.servers) {
      const runs = data.results.filter((r) => r.kind === kind && !r.error && r.phases?.rate);
      if (runs.length === 0) continue;
      const of = (fn) => runs.map((r) => fn(r.phases.rate));
      const cpu = of((p) => p.server_cpu_us_per_delivery);
      const p50 = of((p) => p.latency.p50_us);
      const p99 = of((p) => p.latency.p99_us);
      out[kind] = {
        label: runs[0].label,
        runs: runs.length,
        complete: runs.every((r) => r.phases.rate.complete),
        cpu: median(cpu),
        cpuRange: range(cpu),
        p50: median(p50),
        p99: median(p99),
        p99Range: range(p99),
        cpuByRound: cpu,
        p99ByRound: p99,
      };
    }
    return out;
  }

  /** Ratios of ours to `base` per round (rounds are interleaved: one round's servers ran back to back). */
  function perRoundRatios(data, base, pick) {
    const out = [];
    for (let round = 0; round < data.config.rounds; round++) {
      const get = (kind) => data.results.find((r) => r.kind === kind && r.round === round && !r.error);
      const a = get('ours')?.phases?.rate;
      const b = get(base)?.phases?.rate;
      const r = a && b ? ratio(pick(a), pick(b)) : null;
      if (r !== null) out.push(r);
    }
    return out;
  }

  function tableRows(data) {
    const s = stats(data);
    const rg = (v, d, scale = 1) => (v ? ` [${(v[0] / scale).toFixed(d)}–${(v[1] / scale).toFixed(d)}]` : '');
    const head = [
      'server',
      'CPU µs/delivery',
      'p50 ms',
      'p99 ms',
      'CPU vs ws',
      'p99 vs ws',
      'CPU vs socket.io',
      'p99 vs socket.io',
    ];
    const rows = Object.entries(s).map(([kind, v]) => [
      v.label + (v.complete ? '' : ' (INCOMPLETE)'),
      f(v.cpu, 3) + rg(v.cpuRange, 3),
      ms(v.p50),
      ms(v.p99) + rg(v.p99Range, 2, 1000),
      kind === 'ws-bare' ? '1' : x(ratio(v.cpu, s['ws-bare']?.cpu)),
      kind === 'ws-bare' ? '1' : x(ratio(v.p99, s['ws-bare']?.p99)),
      kind === 'socketio' ? '1' : x(ratio(v.cpu, s.socketio?.cpu)),
      kind === 'socketio' ? '1' : x(ratio(v.p99, s.socketio?.p99)),
    ]);
    return [head, ...rows];
  }

  function render(data) {
    const c = data.config;
    const lines = [];
    lines.push(
      `${c.subscribers} subscribers of one ${c.via} (${c.clientProcs} client processes) plus the publisher (also a subscriber): ` +
        `${c.rate} messages/s open loop for ${c.seconds} s (${c.rate * c.seconds} messages, ${c.rate * (c.subscribers + 1)} deliveries/s), ` +
        `after ${c.warmupSeconds} s of warm-up at the same rate; ${c.payload}-character content; ` +
        `${c.rounds > 1 ? `${c.rounds} interleaved rounds, medians with [min–max]` : 'one round'}.`,
      '',
    );
    lines.push(mdTable(tableRows(data)), '');
    for (const base of ['ws-bare', 'socketio']) {
      const cpu = perRoundRatios(data, base, (p) => p.server_cpu_us_per_delivery);
      const p99 = perRoundRatios(data, base, (p) => p.latency.p99_us);
      if (cpu.length === 0) continue;
      const name = SERVERS[base].label;
      lines.push(
        `- CPU per delivery, ours / ${name}: ${cpu.map(ratioText).join(', ')}` +
          `; p99, ours / ${name}: ${p99.map(ratioText).join(', ')}`,
      );
    }
    lines.push('');
    lines.push(...foreignLoadWarning(data.results));
    lines.push('Details:', '');
    for (const r of data.results) {
      if (r.error) {
        lines.push(`- **${r.label} failed:** ${r.error}`);
        continue;
      }
      lines.push(
        `- **${r.label}**${c.rounds > 1 ? ` (round ${r.round + 1})` : ''}: \`${r.command}\`; ` +
          `${r.connected} connected in ${r.connect_ms} ms, ${r.joined} ${c.via === 'channel' ? 'subscribed' : 'joined'} in ${r.join_ms} ms`,
      );
      for (const p of Object.values(r.phases)) lines.push(`  - ${p.name}: ${describePhase(p)}`);
    }
    lines.push('');
    return lines;
  }

  function targets(data) {
    const s = stats(data);
    const c = data.config;
    const scale = `${c.subscribers} subs, ${c.rate} msg/s`;
    const row = (what, pick, target, limit, d) => {
      const rounds = perRoundRatios(data, 'ws-bare', (p) =>
        pick === 'cpu' ? p.server_cpu_us_per_delivery : p.latency.p99_us,
      );
      const r = ratio(s.ours?.[pick], s['ws-bare']?.[pick]);
      const scaleOf = pick === 'cpu' ? 1 : 1000;
      const fmt = (v) => (v === null || v === undefined ? 'n/a' : (v / scaleOf).toFixed(d));
      return {
        what,
        ws: fmt(s['ws-bare']?.[pick]),
        socketio: fmt(s.socketio?.[pick]),
        ours: fmt(s.ours?.[pick]),
        vs:
          r === null
            ? 'n/a'
            : `${r.toFixed(2)}× ws` +
              (rounds.length > 1
                ? ` [${Math.min(...rounds).toFixed(2)}–${Math.max(...rounds).toFixed(2)}]`
                : ''),
        target,
        met: rounds.length ? rounds.every((v) => v <= limit) && s.ours.complete : null,
        disturbed: disturbed(
          ...data.results.filter((x) => ['ws-bare', 'ours'].includes(x.kind)).map((x) => x.phases?.rate),
        ),
      };
    };
    return [
      row(`${scale}: server CPU µs/delivery`, 'cpu', '≤ 1.05× ws in every run', 1.05, 2),
      row(`${scale}: latency p99 ms`, 'p99', '≤ 1.1× ws in every run', 1.1, 1),
    ];
  }

  function summary(data) {
    return { rows: tableRows(data), notes: [] };
  }

  return {
    id,
    title: `Steady rate: ${cfg.subscribers} subscribers × ${cfg.rate} msg/s`,
    config: cfg,
    run,
    render,
    targets,
    summary,
    stats,
  };
}

export const rate2000 = rateScenario({
  id: 'rate2000',
  prefix: 'BENCH_RATE2000',
  subscribers: 2000,
  rate: 20,
  seconds: 10,
  procs: common.clientProcs,
});

export const rate10k = rateScenario({
  id: 'rate10k',
  prefix: 'BENCH_RATE10K',
  subscribers: 10000,
  rate: 4,
  seconds: 10,
  procs: Math.max(4, common.clientProcs),
});
