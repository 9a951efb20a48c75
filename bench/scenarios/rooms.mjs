// rooms: many small rooms and one busy publisher (issue 10, failure 4).
// BENCH_ROOMS_ROOMS rooms of BENCH_ROOMS_MEMBERS receiving members each; one
// publisher is a member of every room and sends BENCH_ROOMS_RATE messages/s,
// round robin over the rooms, for BENCH_ROOMS_SECONDS. Reported: the share of
// deliveries that arrived (the publisher gets its own copy too), latency, and
// what was closed or refused on the way.
import { messageContent, nowUs } from '../lib/client.mjs';
import { common, num } from '../lib/config.mjs';
import { Histogram } from '../lib/histogram.mjs';
import { clientCpu, cpuOf, mergeStats, nextPhaseId } from '../lib/phase.mjs';
import { machineBusyUs } from '../lib/proc.mjs';
import { disturbed, f, mdTable, ms, pct, ratio, tallyText, x } from '../lib/report.mjs';
import { runEach, log, sleep, startServer } from '../lib/servers.mjs';
import { login, mintTokens, openClient } from '../lib/setup.mjs';
import { Workers } from '../lib/workers.mjs';

const cfg = {
  rooms: num('BENCH_ROOMS_ROOMS', 500),
  members: num('BENCH_ROOMS_MEMBERS', 10),
  rate: num('BENCH_ROOMS_RATE', 4000),
  seconds: num('BENCH_ROOMS_SECONDS', 5),
  clientProcs: num('BENCH_ROOMS_CLIENT_PROCS', common.clientProcs),
  // After the last send, the phase ends once no delivery arrived for this long.
  quietMs: num('BENCH_ROOMS_QUIET_MS', 3000),
  payload: num('BENCH_PAYLOAD', 100),
  servers: common.servers,
};

/** Run `fn` over `items`, `size` at a time; resolves with allSettled results. */
async function inBatches(items, size, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += size)
    out.push(...(await Promise.allSettled(items.slice(i, i + size).map((v, k) => fn(v, i + k)))));
  return out;
}

/** The publisher's rooms: created by it on the demo (it owns them), joined elsewhere. */
async function setUpRooms(kind, publisher) {
  const names = Array.from({ length: cfg.rooms }, (_v, i) => `bench-room-${i}`);
  if (kind !== 'ours') {
    const res = await inBatches(names, 50, (name) => publisher.join(name));
    const bad = res.find((r) => r.status === 'rejected');
    if (bad) throw new Error(`publisher could not join: ${bad.reason.message}`);
    return names;
  }
  const res = await inBatches(names, 50, (name) => publisher.request('create_room', { name }));
  const bad = res.find((r) => r.status === 'rejected');
  if (bad) throw new Error(`publisher could not create the rooms: ${bad.reason.message}`);
  return res.map((r) => r.value.room.id);
}

async function one(kind) {
  const server = await startServer(kind, {
    name: `rooms-${kind}`,
    // The publisher belongs to every room (the default max_rooms_per_user is 50).
    env:
      kind === 'ours'
        ? {
            FORGE_STREAMING_MAX_ROOMS_PER_USER: String(cfg.rooms + 10),
            FORGE_STREAMING_MAX_ROOMS_OWNED_PER_USER: String(cfg.rooms + 10),
          }
        : {},
  });
  log(`${server.label} (${kind}) on 127.0.0.1:${server.port}`);
  const result = { kind, label: server.label, command: server.command };
  let publisher = null;
  let workers = null;
  try {
    const token = await login(kind, server.port, 'bench-publisher');
    publisher = await openClient(kind, server.port, token);
    const t0r = Date.now();
    const roomIds = await setUpRooms(kind, publisher);
    log(`  ${roomIds.length} rooms ready in ${Date.now() - t0r} ms`);

    const n = cfg.rooms * cfg.members;
    const tokens =
      kind === 'ours' ? await mintTokens(Array.from({ length: n }, (_v, i) => `bench-${i}`)) : null;
    workers = new Workers(cfg.clientProcs);
    const conn = await workers.connect({
      kind,
      port: server.port,
      n,
      tokens,
      concurrency: common.connectConcurrency,
    });
    log(
      `  ${conn.connected} connections open in ${conn.ms} ms${conn.failed ? `, ${conn.failed} failed: ${conn.firstError}` : ''}`,
    );
    const join = await workers.join({ request: 'join_room', targets: roomIds, n });
    log(
      `  ${join.ok} joins in ${join.ms} ms${join.failed ? `, ${join.failed} failed: ${join.firstError}` : ''}`,
    );
    Object.assign(result, {
      connected: conn.connected,
      connect_ms: conn.ms,
      joined: join.ok,
      join_ms: join.ms,
    });
    await sleep(1000);

    result.phase = await sendRoundRobin({ server, workers, publisher, roomIds, members: join.perTarget });
  } finally {
    publisher?.close();
    await workers?.close();
    await server.stop();
  }
  return result;
}

async function sendRoundRobin({ server, workers, publisher, roomIds, members }) {
  const id = nextPhaseId();
  const m = Math.max(1, Math.round(cfg.rate * cfg.seconds));
  const roomOf = (seq) => roomIds[(seq - 1) % roomIds.length];
  let expected = 0;
  for (let seq = 1; seq <= m; seq++) expected += (members[roomOf(seq)] ?? 0) + 1; // + the publisher's own copy
  const own = { deliveries: 0, hist: new Histogram() };
  let lastDeliveryAt = Date.now();
  publisher.onDelivery = (ph, _seq, lat) => {
    if (ph !== id) return;
    own.deliveries++;
    own.hist.record(lat);
    lastDeliveryAt = Date.now();
  };
  publisher.lastSeq = 0;
  await workers.all({ op: 'phase', id, m, track: 'count' }, 'phase-ready');
  const byWorker = new Array(workers.procs.length).fill(0);
  const delivered = () => own.deliveries + byWorker.reduce((a, b) => a + b, 0);
  const onWorker = (idx, msg) => {
    if (msg.op !== 'progress' || msg.phase !== id || msg.deliveries === byWorker[idx]) return;
    byWorker[idx] = msg.deliveries;
    lastDeliveryAt = Date.now();
  };
  workers.on(onWorker);

  let sent = 0;
  let unsent = 0;
  let acks = 0;
  let ackErrors = 0;
  let lastAckError = null;
  let sendEndUs = null;
  const busy0 = machineBusyUs();
  const ours0 = clientCpu(workers.pids);
  const cpu0 = cpuOf([server.pid]);
  const t0 = nowUs();
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(m, Math.floor(((nowUs() - t0) * cfg.rate) / 1e6) + 1);
      while (sent < due) {
        sent++;
        if (!publisher.isOpen) {
          unsent++;
          continue;
        }
        publisher
          .request('send_message', { room_id: roomOf(sent), content: messageContent(id, sent, cfg.payload) })
          .then(
            () => acks++,
            (e) => {
              ackErrors++;
              lastAckError = e.message;
            },
          );
      }
      if (sent < m) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  sendEndUs = nowUs();
  // Wait for the deliveries: all of them, or quiet for quietMs, or a hard cap.
  const capAt = Date.now() + cfg.quietMs + 60000;
  while (delivered() < expected && Date.now() - lastDeliveryAt < cfg.quietMs && Date.now() < capAt)
    await sleep(100);
  const complete = delivered() >= expected;
  const t1 = complete ? nowUs() : nowUs() - Math.min(cfg.quietMs, Date.now() - lastDeliveryAt) * 1000;
  const cpu1 = cpuOf([server.pid]);
  const busy1 = machineBusyUs();
  const ours1 = clientCpu(workers.pids);
  workers.off(onWorker);
  await sleep(200);
  const { hist, w } = mergeStats(await workers.all({ op: 'collect' }, 'stats'));
  hist.merge(own.hist);
  const deliveries = w.deliveries + own.deliveries;
  const wallUs = nowUs() - t0;
  const cpuUs = cpu1.total - cpu0.total;
  const r = {
    messages: m,
    rate: cfg.rate,
    sent: sent - unsent,
    unsent,
    acks,
    ack_errors: ackErrors,
    last_ack_error: lastAckError,
    publisher_error_codes: publisher.errorCodes,
    publisher_close_code: publisher.closeCode,
    publisher_closed_after_s: publisher.closedAtUs ? (publisher.closedAtUs - t0) / 1e6 : null,
    send_s: (sendEndUs - t0) / 1e6,
    complete,
    deliveries,
    publisher_deliveries: own.deliveries,
    expected_deliveries: expected,
    delivered_share: deliveries / expected,
    wall_s: (t1 - t0) / 1e6,
    server_cpu_ms: cpuUs / 1000,
    server_cpu_us_per_delivery: deliveries ? cpuUs / deliveries : null,
    client_cpu_ms: (ours1 - ours0) / 1000,
    foreign_cpu_cores: Math.max(0, busy1 - busy0 - cpuUs - (ours1 - ours0)) / wallUs,
    latency: hist.summary(),
    client_issues: w,
  };
  log(`  ${describe(r)}`);
  return r;
}

/** Requests rejected without an error frame: the connection closed before their answer. */
const lostText = (n) => (n > 0 ? `${n} unanswered when the connection closed` : '');

function describe(p) {
  const problems = [];
  if (p.publisher_close_code !== null)
    problems.push(
      `publisher closed ${p.publisher_close_code} after ${f(p.publisher_closed_after_s)} s (${p.unsent} messages not sent)`,
    );
  if (p.ack_errors)
    problems.push(
      `${p.ack_errors} requests failed (${[
        tallyText(p.publisher_error_codes),
        lostText(p.ack_errors - Object.values(p.publisher_error_codes).reduce((a, b) => a + b, 0)),
      ]
        .filter(Boolean)
        .join(', ')})`,
    );
  const ci = p.client_issues;
  if (ci.closed) problems.push(`${ci.closed} receivers closed (${tallyText(ci.closeCodes)})`);
  if (ci.errors) problems.push(`${ci.errors} error frames at receivers (${tallyText(ci.errorCodes)})`);
  if (ci.outOfOrder) problems.push(`${ci.outOfOrder} out of order`);
  return (
    `delivered ${pct(p.delivered_share)} (${p.deliveries}/${p.expected_deliveries}), ${p.sent}/${p.messages} sent in ${f(p.send_s)} s, ` +
    `${p.acks} acks, server CPU ${p.server_cpu_ms.toFixed(0)} ms (${f(p.server_cpu_us_per_delivery, 3)} µs/delivery), ` +
    `latency p50/p99/max ${ms(p.latency.p50_us)}/${ms(p.latency.p99_us)}/${ms(p.latency.max_us)} ms, foreign load ${p.foreign_cpu_cores.toFixed(2)} cores` +
    (problems.length ? `; ${problems.join('; ')}` : '')
  );
}

const run = () => runEach(cfg, one);

function tableRows(data) {
  const by = Object.fromEntries(data.results.filter((r) => r.phase).map((r) => [r.kind, r.phase]));
  const head = [
    'server',
    'delivered',
    'p50 ms',
    'p99 ms',
    'p99 vs ws',
    'p99 vs socket.io',
    'CPU µs/delivery',
    'publisher',
    'receivers closed',
  ];
  const rows = data.results.map((r) => {
    const p = r.phase;
    if (!p) return [r.label, `failed: ${r.error}`, '', '', '', '', '', '', ''];
    return [
      r.label,
      pct(p.delivered_share),
      ms(p.latency.p50_us),
      ms(p.latency.p99_us),
      r.kind === 'ws-bare' ? '1' : x(ratio(p.latency.p99_us, by['ws-bare']?.latency.p99_us)),
      r.kind === 'socketio' ? '1' : x(ratio(p.latency.p99_us, by.socketio?.latency.p99_us)),
      f(p.server_cpu_us_per_delivery, 3),
      p.publisher_close_code === null
        ? `open, ${p.acks}/${p.messages} acks`
        : `closed ${p.publisher_close_code} after ${f(p.publisher_closed_after_s)} s`,
      p.client_issues.closed ? tallyText(p.client_issues.closeCodes) : '0',
    ];
  });
  return [head, ...rows];
}

function render(data) {
  const c = data.config;
  const lines = [
    `${c.rooms} rooms × ${c.members} receiving members (${c.rooms * c.members} connections in ${c.clientProcs} client processes); ` +
      `one publisher, a member of every room, sends ${c.rate} messages/s round robin over the rooms for ${c.seconds} s ` +
      `(${c.rate * c.seconds} messages, each delivered to its room's members and back to the publisher); ` +
      `the phase ends when everything arrived or nothing arrived for ${c.quietMs / 1000} s after the last send.`,
    '',
    mdTable(tableRows(data)),
    '',
  ];
  for (const r of data.results) {
    if (r.phase)
      lines.push(
        `- **${r.label}**: \`${r.command}\`; ${r.connected} connected in ${r.connect_ms} ms, ${r.joined} joins in ${r.join_ms} ms; ${describe(r.phase)}`,
      );
  }
  lines.push('');
  return lines;
}

function targets(data) {
  const by = Object.fromEntries(data.results.filter((r) => r.phase).map((r) => [r.kind, r.phase]));
  const cell = (p) => (p ? `${pct(p.delivered_share)}, ${ms(p.latency.p99_us)} ms` : undefined);
  const ours = by.ours;
  const r = ratio(ours?.latency.p99_us, by.socketio?.latency.p99_us);
  return [
    {
      what: `${data.config.rooms} rooms × ${data.config.members}, ${data.config.rate} msg/s: delivered, p99`,
      ws: cell(by['ws-bare']),
      socketio: cell(by.socketio),
      ours: cell(ours),
      vs: r === null ? 'n/a' : `${r.toFixed(2)}× socket.io p99`,
      target: '100%, p99 ≤ 0.5× socket.io',
      met: ours ? ours.complete && r !== null && r <= 0.5 : null,
      disturbed: disturbed(ours, by.socketio),
    },
  ];
}

export default {
  id: 'rooms',
  title: `Many rooms: ${cfg.rooms} rooms × ${cfg.members} members, ${cfg.rate} msg/s round robin`,
  config: cfg,
  run,
  render,
  targets,
  summary: (data) => ({ rows: tableRows(data), notes: [] }),
};
