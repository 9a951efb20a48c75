// paused: one consumer stops reading while BENCH_PAUSED_SUBSCRIBERS others
// receive BENCH_PAUSED_PAYLOAD-byte messages at BENCH_PAUSED_RATE msg/s
// (issue 10: a stalled reader costs bounded memory and is cut cleanly).
// On the same server and connections: a baseline phase (everyone reads), then
// the paused phase. Reported: when the server let go of the paused socket,
// the close code its client saw, the server's RSS over time, and the others'
// latency against the baseline.
import { nowUs } from '../lib/client.mjs';
import { common, num } from '../lib/config.mjs';
import { describePhase, runPhase } from '../lib/phase.mjs';
import { memStatus, tcpSocket } from '../lib/proc.mjs';
import { disturbed, f, foreignLoadWarning, mdTable, mib, ms, ratio, x } from '../lib/report.mjs';
import { runEach, log, sleep, startServer } from '../lib/servers.mjs';
import { closeFanout, mintTokens, openClient, openFanout, route } from '../lib/setup.mjs';

const cfg = {
  subscribers: num('BENCH_PAUSED_SUBSCRIBERS', 500),
  rate: num('BENCH_PAUSED_RATE', 200),
  payload: num('BENCH_PAUSED_PAYLOAD', 1024),
  seconds: num('BENCH_PAUSED_SECONDS', 45),
  baselineSeconds: num('BENCH_PAUSED_BASELINE_SECONDS', 10),
  writeTimeout: num('BENCH_PAUSED_WRITE_TIMEOUT', 10),
  // The demo's dead-peer check (ping every ping_interval, pong within pong_timeout) would also
  // catch a reader that stopped; it is pushed out of the way to measure the outbound flow control.
  pingInterval: num('BENCH_PAUSED_PING_INTERVAL', 300),
  clientProcs: common.clientProcs,
  via: process.env.BENCH_RATE_VIA === 'room' ? 'room' : 'channel',
  servers: common.servers,
};

/** The demo's count of slow consumers it disconnected (Prometheus counter), or null. */
async function queueDrops(kind, port) {
  if (kind !== 'ours') return null;
  try {
    const text = await (
      await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })
    ).text();
    const m = /^streaming_send_queue_drops_total(?:\{[^}]*\})? (\d+)/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Watch the paused connection from the kernel's side: the server's end of the TCP
 * connection (its send queue; gone, or no longer held by the server process, once the
 * server dropped it), the client's receive queue, and the server's RSS. On the demo, also
 * poll its slow-consumer counter: the moment it decided to close (the socket itself is
 * released up to 2 s later, when the close handshake times out).
 */
function watch(server, pausedPort, t0, drops0) {
  const w = {
    droppedUs: null,
    decidedUs: null,
    kernelFullUs: null,
    lastTx: -1,
    sameTx: 0,
    samples: [],
    rssPeak: 0,
    txPeak: 0,
    rxPeak: 0,
    ticks: 0,
  };
  w.timer = setInterval(() => {
    const now = nowUs();
    const srv = tcpSocket(server.port, pausedPort);
    const cli = tcpSocket(pausedPort, server.port);
    const { rss } = memStatus(server.pid);
    if (rss > w.rssPeak) w.rssPeak = rss;
    if (srv) w.txPeak = Math.max(w.txPeak, srv.txQueue);
    if (cli) w.rxPeak = Math.max(w.rxPeak, cli.rxQueue);
    if (w.droppedUs === null && (!srv || srv.state !== 1 || srv.inode === 0)) w.droppedUs = now;
    // The kernel buffers are full once the server's send queue stops moving: from then on
    // whatever the server sends waits in its own memory.
    if (srv && w.kernelFullUs === null) {
      w.sameTx = srv.txQueue > 0 && srv.txQueue === w.lastTx ? w.sameTx + 1 : 0;
      if (w.sameTx === 2) w.kernelFullUs = now - 500000;
      w.lastTx = srv.txQueue;
    }
    if (w.ticks++ % 4 === 0)
      w.samples.push([
        +((now - t0) / 1e6).toFixed(1),
        +(rss / 2 ** 20).toFixed(1),
        srv?.txQueue ?? null,
        cli?.rxQueue ?? null,
      ]);
  }, 250);
  if (drops0 !== null) {
    const poll = async () => {
      if (w.decidedUs !== null || w.stopped) return;
      const n = await queueDrops(server.kind, server.port);
      if (n !== null && n > drops0) w.decidedUs ??= nowUs();
      if (!w.stopped) w.poller = setTimeout(poll, 1000);
    };
    w.poller = setTimeout(poll, 1000);
  }
  w.stop = () => {
    w.stopped = true;
    clearInterval(w.timer);
    clearTimeout(w.poller);
  };
  return w;
}

async function one(kind) {
  const env =
    kind === 'ours'
      ? {
          FORGE_STREAMING_WRITE_TIMEOUT: String(cfg.writeTimeout),
          FORGE_STREAMING_PING_INTERVAL: String(cfg.pingInterval),
        }
      : {};
  const server = await startServer(kind, { name: `paused-${kind}`, env });
  log(`${server.label} (${kind}) on 127.0.0.1:${server.port}`);
  const result = { kind, label: server.label, command: server.command };
  let session = null;
  let paused = null;
  let watcher = null;
  try {
    session = await openFanout({
      kind,
      senderPort: server.port,
      n: cfg.subscribers,
      procs: cfg.clientProcs,
      via: cfg.via,
    });
    const [token] = kind === 'ours' ? await mintTokens(['bench-paused']) : [null];
    paused = await openClient(kind, server.port, token);
    await route(cfg.via, session.target).join(paused);
    const ctx = {
      servers: [server],
      workers: session.workers,
      sender: session.sender,
      receivers: session.receivers,
    };
    ctx.publish = session.publish;
    const opts = { mode: 'rate', rate: cfg.rate, payload: cfg.payload, stallMs: 5000 };
    await sleep(500);
    result.phases = {};
    result.phases.warmup = await runPhase(ctx, { ...opts, name: 'warmup', m: Math.round(cfg.rate * 2) });
    result.phases.baseline = await runPhase(ctx, {
      ...opts,
      name: 'baseline (nobody paused)',
      m: Math.round(cfg.rate * cfg.baselineSeconds),
    });
    const drops0 = await queueDrops(kind, server.port);
    const rssBefore = memStatus(server.pid).rss;
    const pausedPort = paused.localPort;
    paused.pauseReading();
    const t0 = nowUs();
    watcher = watch(server, pausedPort, t0, drops0);
    result.phases.paused = await runPhase(ctx, {
      ...opts,
      name: 'one consumer paused',
      m: Math.round(cfg.rate * cfg.seconds),
    });
    await sleep(300);
    watcher.stop();
    const rssEnd = memStatus(server.pid).rss;
    const drops1 = await queueDrops(kind, server.port);
    // Read again: a dropped connection then sees its close (the code, if the close frame got out).
    paused.resumeReading();
    const waitUntil = Date.now() + (watcher.droppedUs ? 5000 : 1000);
    while (paused.closeCode === null && Date.now() < waitUntil) await sleep(50);
    const w = watcher;
    result.paused = {
      paused_for_s: (nowUs() - t0) / 1e6,
      dropped_after_s: w.droppedUs ? (w.droppedUs - t0) / 1e6 : null,
      kernel_buffers_full_after_s: w.kernelFullUs ? (w.kernelFullUs - t0) / 1e6 : null,
      dropped_after_kernel_full_s:
        w.droppedUs && w.kernelFullUs ? (w.droppedUs - w.kernelFullUs) / 1e6 : null,
      // The demo only (its /metrics counter, polled every second): when it decided to close.
      slow_consumer_close_after_s: w.decidedUs ? (w.decidedUs - t0) / 1e6 : null,
      slow_consumer_close_after_kernel_full_s:
        w.decidedUs && w.kernelFullUs ? (w.decidedUs - w.kernelFullUs) / 1e6 : null,
      client_close_code: paused.closeCode,
      slow_consumer_drops: drops0 !== null && drops1 !== null ? drops1 - drops0 : null,
      server_send_queue_peak_bytes: w.txPeak,
      client_receive_queue_peak_bytes: w.rxPeak,
      rss_before_bytes: rssBefore,
      rss_peak_bytes: w.rssPeak,
      rss_end_bytes: rssEnd,
      rss_series: w.samples, // [s since pause, RSS MiB, server send queue bytes, client receive queue bytes]
    };
    log(`  ${describePaused(result.paused, cfg.seconds)}`);
  } finally {
    watcher?.stop();
    paused?.close();
    await closeFanout(session);
    await server.stop();
  }
  return result;
}

function describePaused(p, seconds) {
  const full =
    p.kernel_buffers_full_after_s === null
      ? 'the kernel buffers never filled'
      : `the kernel buffers were full ${f(p.kernel_buffers_full_after_s, 1)} s after the pause`;
  const drop =
    p.dropped_after_s === null
      ? `not dropped within ${seconds} s`
      : `socket dropped by the server ${f(p.dropped_after_s, 1)} s after the pause` +
        (p.dropped_after_kernel_full_s !== null
          ? ` (${f(p.dropped_after_kernel_full_s, 1)} s after the kernel buffers filled)`
          : '');
  const decided =
    p.slow_consumer_close_after_s == null
      ? ''
      : `; the server counted a slow consumer ${f(p.slow_consumer_close_after_s, 1)} s after the pause` +
        (p.slow_consumer_close_after_kernel_full_s != null
          ? ` (${f(p.slow_consumer_close_after_kernel_full_s, 1)} s after the kernel buffers filled)`
          : '');
  return (
    `${full}; ${drop}${decided}; client saw close ${p.client_close_code ?? 'nothing (still open)'}` +
    (p.slow_consumer_drops !== null
      ? `; slow-consumer drops counted by the server: ${p.slow_consumer_drops}`
      : '') +
    `; RSS ${mib(p.rss_before_bytes)} -> peak ${mib(p.rss_peak_bytes)} -> ${mib(p.rss_end_bytes)} MiB; ` +
    `kernel queues: server send ${(p.server_send_queue_peak_bytes / 1024).toFixed(0)} KB, client receive ${(p.client_receive_queue_peak_bytes / 1024).toFixed(0)} KB`
  );
}

const run = () => runEach(cfg, one);

function tableRows(data) {
  const head = [
    'server',
    'kernel buffers full after s',
    'paused one dropped after s',
    'close code seen',
    'RSS before → peak → end MiB',
    'baseline msg/s',
    'others p99 ms: baseline',
    'paused run',
    'ratio',
    'others complete',
  ];
  const rows = data.results.map((r) => {
    if (r.error || !r.paused) return [r.label, `failed: ${r.error}`, '', '', '', '', '', '', '', ''];
    const p = r.paused;
    const b = r.phases.baseline;
    const q = r.phases.paused;
    return [
      r.label,
      f(p.kernel_buffers_full_after_s, 1),
      p.dropped_after_s === null ? `not within ${data.config.seconds}` : f(p.dropped_after_s, 1),
      String(p.client_close_code ?? '–'),
      `${mib(p.rss_before_bytes)} → ${mib(p.rss_peak_bytes)} → ${mib(p.rss_end_bytes)}`,
      `${b.messages_per_s.toFixed(0)} of ${b.rate}`,
      ms(b.latency.p99_us),
      ms(q.latency.p99_us),
      x(ratio(q.latency.p99_us, b.latency.p99_us)),
      q.complete && b.complete ? 'yes' : '**no**',
    ];
  });
  return [head, ...rows];
}

function render(data) {
  const c = data.config;
  const lines = [
    `${c.subscribers} subscribers of one ${c.via} plus the publisher and one more subscriber that stops reading ` +
      `(its client pauses the socket, so the kernel buffers fill and then the server's). ${c.rate} messages/s of ${c.payload} characters: ` +
      `${c.baselineSeconds} s with everyone reading (baseline), then ${c.seconds} s with the one paused. ` +
      `nest-streaming runs with \`FORGE_STREAMING_WRITE_TIMEOUT=${c.writeTimeout}\` and \`FORGE_STREAMING_PING_INTERVAL=${c.pingInterval}\` ` +
      '(so that the ping/pong check does not catch the paused reader first). "Dropped" = the server closed its end of the TCP connection ' +
      '(/proc/net/tcp: the socket left ESTABLISHED or no process holds it); the client reads again afterwards and reports the close code it got ' +
      '(1006 = no close frame reached it).',
    '',
    mdTable(tableRows(data)),
    '',
  ];
  lines.push(...foreignLoadWarning(data.results));
  for (const r of data.results) {
    if (r.error || !r.paused) continue;
    lines.push(`- **${r.label}**: \`${r.command}\``);
    lines.push(`  - ${describePaused(r.paused, c.seconds)}`);
    const series = r.paused.rss_series.filter((_s, i) => i % 5 === 0);
    lines.push(`  - RSS over time (s: MiB): ${series.map(([t, m]) => `${t}: ${m}`).join(', ')}`);
    for (const p of Object.values(r.phases)) lines.push(`  - ${p.name}: ${describePhase(p)}`);
  }
  lines.push('');
  return lines;
}

function targets(data) {
  const by = Object.fromEntries(data.results.filter((r) => r.paused).map((r) => [r.kind, r]));
  const c = data.config;
  const cell = (r) => {
    if (!r) return undefined;
    const p = r.paused;
    const drop =
      p.dropped_after_s === null
        ? 'not dropped'
        : `dropped ${f(p.dropped_after_s, 1)} s (close ${p.client_close_code ?? '–'})`;
    return `${drop}, peak RSS +${mib(p.rss_peak_bytes - p.rss_before_bytes)} MiB, p99 ${x(ratio(r.phases.paused.latency.p99_us, r.phases.baseline.latency.p99_us))} baseline`;
  };
  const o = by.ours;
  const p99r = o ? ratio(o.phases.paused.latency.p99_us, o.phases.baseline.latency.p99_us) : null;
  // When the server decided to close: the demo's counter when polled, else the socket's release
  // (which may come up to 2 s later, after the close handshake's grace period).
  const decided = o?.paused.slow_consumer_close_after_kernel_full_s;
  const released = o?.paused.dropped_after_kernel_full_s;
  const afterFull = decided ?? released;
  const limit = c.writeTimeout + (decided != null ? 1 : 3);
  return [
    {
      what: `1 paused consumer among ${c.subscribers}, ${c.payload} B × ${c.rate} msg/s: drop, RSS, others' p99`,
      ws: cell(by['ws-bare']),
      socketio: cell(by.socketio),
      ours: cell(o),
      vs:
        afterFull != null
          ? `${decided != null ? 'closed' : 'released'} ${f(afterFull, 1)} s after the kernel buffers filled`
          : '',
      target: `dropped within write_timeout (${c.writeTimeout} s) of the socket stalling, others' p99 ≤ 1.1× baseline (RSS: see the section)`,
      disturbed: disturbed(o?.phases.baseline, o?.phases.paused),
      met: o
        ? afterFull != null && afterFull <= limit && p99r !== null && p99r <= 1.1 && o.phases.paused.complete
        : null,
    },
  ];
}

export default {
  id: 'paused',
  title: `One paused consumer among ${cfg.subscribers} (${cfg.payload} B × ${cfg.rate} msg/s)`,
  config: cfg,
  run,
  render,
  targets,
  summary: (data) => ({ rows: tableRows(data), notes: [] }),
};
