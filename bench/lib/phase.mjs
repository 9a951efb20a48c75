// One measured fan-out phase: the sender publishes `m` messages that every
// receiving connection (and the sender itself) must get, either as fast as an
// end-to-end window allows or open loop at a fixed rate.
import { Histogram } from './histogram.mjs';
import { messageContent, nowUs } from './client.mjs';
import { cpuTimeUs, machineBusyUs } from './proc.mjs';
import { log, sleep } from './servers.mjs';

let phaseCounter = 0;
/** A phase id, unique in this orchestrator (it is part of every benchmark message's content). */
export const nextPhaseId = () => ++phaseCounter;

/** utime + stime summed over processes (µs); processes that are gone count 0. */
export function cpuOf(pids) {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    try {
      const c = cpuTimeUs(pid);
      user += c.user;
      system += c.system;
    } catch {
      /* exited */
    }
  }
  return { user, system, total: user + system };
}

/** CPU of the benchmark's own processes (client workers and this orchestrator), µs. */
export function clientCpu(workerPids) {
  const own = process.cpuUsage();
  return cpuOf(workerPids).total + own.user + own.system;
}

/** Sum the workers' `stats` replies. */
export function mergeStats(stats) {
  const hist = new Histogram();
  const w = {
    deliveries: 0,
    frames: 0,
    stale: 0,
    dupes: 0,
    outOfOrder: 0,
    errors: 0,
    errorCodes: {},
    closed: 0,
    closeCodes: {},
    lastError: null,
  };
  for (const s of stats) {
    if (s.hist) hist.merge(Histogram.fromJSON(s.hist));
    for (const k of ['deliveries', 'frames', 'stale', 'dupes', 'outOfOrder', 'errors', 'closed'])
      w[k] += s[k];
    for (const [k, v] of Object.entries(s.errorCodes)) w.errorCodes[k] = (w.errorCodes[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.closeCodes)) w.closeCodes[k] = (w.closeCodes[k] ?? 0) + v;
    w.lastError ??= s.lastError;
  }
  return { hist, w };
}

/**
 * @param ctx.servers   [{label, pid}] processes whose CPU is the server's (several for a cluster)
 * @param ctx.workers   the client processes
 * @param ctx.sender    the publishing BenchClient (it receives its own messages too)
 * @param ctx.publish   (content) => Promise of the ack
 * @param ctx.receivers connections held by the workers
 * @param opts          {name, mode: 'window'|'rate', m, window?, rate?, payload, stallMs}
 */
export async function runPhase(ctx, { name, mode, m, window, rate, payload = 100, stallMs = 20000 }) {
  const id = nextPhaseId();
  const { servers, workers, sender, receivers } = ctx;
  const pids = servers.map((s) => s.pid);
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
  let perServer1 = null;
  let finish;
  const finishedP = new Promise((r) => (finish = r));

  const globalDone = () => Math.min(local.done, ...doneBy);
  const sendOne = () => {
    sent++;
    ctx.publish(messageContent(id, sent, payload)).then(
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
  const end = () => {
    t1 = nowUs();
    cpu1 = cpuOf(pids);
    perServer1 = servers.map((s) => cpuOf([s.pid]).total);
    finished = true;
    finish();
  };
  function progress() {
    lastProgressAt = Date.now();
    if (finished) return;
    if (globalDone() >= m) return end();
    pump();
  }
  const onWorker = (idx, msg) => {
    if (msg.op !== 'progress' || msg.phase !== id) return;
    doneBy[idx] = msg.done;
    progress();
  };
  workers.on(onWorker);

  const busy0 = machineBusyUs();
  const ours0 = clientCpu(workers.pids);
  const cpu0 = cpuOf(pids);
  const perServer0 = servers.map((s) => cpuOf([s.pid]).total);
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
  // A phase that stops making progress (lost messages, closed sockets) ends as incomplete.
  const stall = setInterval(() => {
    if (!finished && sent >= (mode === 'window' ? 1 : m) && Date.now() - lastProgressAt > stallMs) end();
  }, 250);
  await finishedP;
  const busy1 = machineBusyUs();
  const ours1 = clientCpu(workers.pids);
  clearInterval(stall);
  workers.off(onWorker);
  await sleep(200); // let the last acks arrive
  const stats = await workers.all({ op: 'collect' }, 'stats');
  const { hist, w } = mergeStats(stats);
  hist.merge(local.hist);
  const deliveries = w.deliveries + local.deliveries;
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
    payload,
    sent,
    acks,
    ack_errors: ackErrors,
    last_ack_error: lastAckError,
    sender_closed: sender.closeCode,
    complete: globalDone() >= m,
    deliveries,
    expected_deliveries: expected,
    wall_s: wallUs / 1e6,
    server_cpu_ms: cpuUs / 1000,
    server_cpu_user_ms: (cpu1.user - cpu0.user) / 1000,
    server_cpu_system_ms: (cpu1.system - cpu0.system) / 1000,
    server_cpu_by_process_ms:
      servers.length > 1
        ? Object.fromEntries(servers.map((s, i) => [s.label, (perServer1[i] - perServer0[i]) / 1000]))
        : undefined,
    server_cpu_us_per_delivery: deliveries ? cpuUs / deliveries : null,
    server_cpu_utilization: cpuUs / wallUs,
    client_cpu_ms: (ours1 - ours0) / 1000,
    // CPU used on this machine by processes that are not part of the benchmark (other jobs disturb the numbers).
    foreign_cpu_cores: Math.max(0, busy1 - busy0 - cpuUs - (ours1 - ours0)) / wallUs,
    receiver_frames: w.frames,
    deliveries_per_frame: w.frames ? w.deliveries / w.frames : null,
    deliveries_per_s: deliveries / (wallUs / 1e6),
    messages_per_s: m / (wallUs / 1e6),
    latency: lat,
    client_issues: w,
    t0_us: t0,
    t1_us: t1,
  };
  log(`  ${name}: ${describePhase(r)}`);
  return r;
}

/** One line about a phase, for the log and the details in RESULTS.md. */
export function describePhase(p) {
  const ms = (us) => (us === null || us === undefined ? 'n/a' : (us / 1000).toFixed(2));
  const ci = p.client_issues;
  const codes = (o) =>
    Object.entries(o)
      .map(([k, v]) => `${v}× ${k}`)
      .join(', ');
  const problems = [];
  if (!p.complete) problems.push('INCOMPLETE');
  if (p.mode === 'rate' && p.messages_per_s < 0.95 * p.rate)
    problems.push(
      `behind: ${p.messages_per_s.toFixed(0)} of ${p.rate} msg/s end to end (the system could not keep up)`,
    );
  if (p.ack_errors) problems.push(`${p.ack_errors} failed acks (${p.last_ack_error})`);
  if (p.sender_closed !== null && p.sender_closed !== undefined)
    problems.push(`sender closed ${p.sender_closed}`);
  if (ci.errors) problems.push(`${ci.errors} error frames (${codes(ci.errorCodes)})`);
  if (ci.closed) problems.push(`${ci.closed} receivers closed (${codes(ci.closeCodes)})`);
  if (ci.dupes) problems.push(`${ci.dupes} duplicates`);
  if (ci.outOfOrder) problems.push(`${ci.outOfOrder} out of order`);
  return (
    `${p.deliveries}/${p.expected_deliveries} deliveries in ${p.wall_s.toFixed(2)} s ` +
    `(${Math.round(p.messages_per_s)} msg/s), server CPU ${p.server_cpu_ms.toFixed(0)} ms ` +
    `(user ${p.server_cpu_user_ms.toFixed(0)}, system ${p.server_cpu_system_ms.toFixed(0)}; ` +
    `${p.server_cpu_us_per_delivery?.toFixed(3)} µs/delivery, ${(100 * p.server_cpu_utilization).toFixed(0)}% of a core), ` +
    `${p.deliveries_per_frame?.toFixed(2)} msgs/frame, clients' CPU ${p.client_cpu_ms.toFixed(0)} ms, ` +
    `foreign load ${p.foreign_cpu_cores.toFixed(2)} cores, ` +
    `latency p50/p90/p99/max ${ms(p.latency.p50_us)}/${ms(p.latency.p90_us)}/${ms(p.latency.p99_us)}/${ms(p.latency.max_us)} ms` +
    (problems.length ? `; problems: ${problems.join('; ')}` : '')
  );
}
