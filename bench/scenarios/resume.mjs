// resume: a member misses BENCH_RESUME_MESSAGES messages of one room while
// offline, then reconnects and sends `resume` (issue 10, failure 3). Only
// nest-streaming has history and resume. Reported: time from `resume` to its
// ack, messages replayed, and the server's peak RSS while it replays (VmHWM from
// /proc/<pid>/status, reset just before the resume, and RSS sampled every
// BENCH_RESUME_SAMPLE_MS).
import { messageContent, nowUs } from '../lib/client.mjs';
import { common, num } from '../lib/config.mjs';
import { cpuOf, nextPhaseId } from '../lib/phase.mjs';
import { resetPeakRss } from '../lib/proc.mjs';
import { f, mdTable, mib } from '../lib/report.mjs';
import { log, sleep, startServer } from '../lib/servers.mjs';
import { createRoom, login, openClient } from '../lib/setup.mjs';

const cfg = {
  messages: num('BENCH_RESUME_MESSAGES', 10000),
  // Publishing the missed messages: at most this many requests waiting for their ack.
  window: num('BENCH_RESUME_WINDOW', 100),
  timeoutMs: num('BENCH_RESUME_TIMEOUT_MS', 60000),
  sampleMs: num('BENCH_RESUME_SAMPLE_MS', 20),
  payload: num('BENCH_PAYLOAD', 100),
};
cfg.maxHistory = Math.max(10000, cfg.messages);

/** Publish `n` messages, at most `window` unacknowledged; resolves with {acks, errors, ms}. */
async function publishMany(publisher, roomId, id, n, window) {
  const t0 = Date.now();
  let sent = 0;
  let acks = 0;
  let errors = 0;
  let lastError = null;
  await new Promise((resolve) => {
    const pump = () => {
      while (sent < n && sent - acks - errors < window && publisher.isOpen) {
        sent++;
        publisher
          .request('send_message', { room_id: roomId, content: messageContent(id, sent, cfg.payload) })
          .then(
            () => {
              acks++;
              next();
            },
            (e) => {
              errors++;
              lastError = e.message;
              next();
            },
          );
      }
      if (!publisher.isOpen || acks + errors >= n) resolve();
    };
    const next = () => (acks + errors >= n || !publisher.isOpen ? resolve() : pump());
    pump();
  });
  return { acks, errors, lastError, ms: Date.now() - t0 };
}

async function run() {
  if (!common.servers.includes('ours'))
    return { config: cfg, skipped: 'BENCH_SERVERS does not include ours' };
  const server = await startServer('ours', {
    name: 'resume-ours',
    env: { FORGE_STREAMING_MAX_HISTORY_MESSAGES: String(cfg.maxHistory) },
  });
  log(`${server.label} on 127.0.0.1:${server.port}`);
  const r = { kind: 'ours', label: server.label, command: server.command };
  let publisher = null;
  let resumer = null;
  let sampler = null;
  try {
    const port = server.port;
    const pubToken = await login('ours', port, 'bench-publisher');
    const resToken = await login('ours', port, 'bench-resumer');
    const roomId = await createRoom('ours', port, pubToken, 'bench');
    const id = nextPhaseId();
    publisher = await openClient('ours', port, pubToken);
    await publisher.join(roomId);

    // The member joins, notes where the room is, and goes away.
    const first = await openClient('ours', port, resToken);
    const joined = await first.join(roomId);
    const lastSeen = joined.latest_seq ?? 0;
    first.close();
    await sleep(500);

    const pub = await publishMany(publisher, roomId, id, cfg.messages, cfg.window);
    r.publish = pub;
    log(
      `  published ${pub.acks}/${cfg.messages} in ${pub.ms} ms${pub.errors ? `, ${pub.errors} failed: ${pub.lastError}` : ''}`,
    );
    if (pub.acks === 0)
      throw new Error(`publishing failed: ${pub.lastError ?? `publisher closed ${publisher.closeCode}`}`);
    await sleep(1000);
    const settled = await server.memory(); // after two forced GCs
    // VmHWM then holds the peak of the resume alone (when the kernel lets us reset it).
    const hwmReset = resetPeakRss(server.pid);
    const before = server.mem();

    let replayed = 0;
    let firstReplayUs = null;
    let resumedUs = null;
    let resumedData = null;
    resumer = await openClient('ours', port, resToken, (ph) => {
      if (ph !== id) return;
      replayed++;
      firstReplayUs ??= nowUs();
    });
    resumer.onLine = (line) => {
      if (!line.startsWith('{"type":"resumed"')) return;
      resumedUs = nowUs();
      try {
        resumedData = JSON.parse(line).data;
      } catch {
        /* keep the time */
      }
    };
    await sleep(300);
    let peak = before.rss;
    const samples = [];
    const cpu0 = cpuOf([server.pid]);
    const t0 = nowUs();
    sampler = setInterval(() => {
      const m = server.mem();
      if (m.rss > peak) peak = m.rss;
      samples.push([(nowUs() - t0) / 1e6, m.rss]);
    }, cfg.sampleMs);
    let outcome = 'timeout';
    let ackUs = null;
    const done = resumer.request('resume', { rooms: { [roomId]: lastSeen } }).then(
      () => {
        outcome = 'ack';
        ackUs = nowUs();
      },
      (e) => {
        outcome = e.message;
      },
    );
    await Promise.race([done, sleep(cfg.timeoutMs)]);
    await sleep(200);
    clearInterval(sampler);
    sampler = null;
    const cpu1 = cpuOf([server.pid]);
    const after = server.mem();
    Object.assign(r, {
      missed: cfg.messages,
      max_history_messages: cfg.maxHistory,
      last_seen_seq: lastSeen,
      outcome,
      time_to_ack_ms: ackUs ? (ackUs - t0) / 1000 : null,
      time_to_first_replayed_ms: firstReplayUs ? (firstReplayUs - t0) / 1000 : null,
      time_to_resumed_ms: resumedUs ? (resumedUs - t0) / 1000 : null,
      replayed,
      resumed: resumedData,
      close_code: resumer.closeCode,
      closed_after_ms: resumer.closedAtUs ? (resumer.closedAtUs - t0) / 1000 : null,
      server_cpu_ms: (cpu1.total - cpu0.total) / 1000,
      rss_settled_bytes: settled.rss,
      rss_before_bytes: before.rss,
      rss_peak_sampled_bytes: peak,
      rss_after_bytes: after.rss,
      hwm_reset: hwmReset,
      hwm_before_bytes: before.hwm,
      hwm_after_bytes: after.hwm,
      // The true peak while resuming when VmHWM was reset, else the sampled one.
      rss_peak_bytes: hwmReset ? Math.max(after.hwm, peak) : peak,
      rss_samples: samples.filter((_s, i) => i % Math.max(1, Math.floor(samples.length / 50)) === 0),
    });
    log(`  ${describe(r)}`);
  } catch (err) {
    log(`ours FAILED: ${err.stack ?? err}`);
    r.error = String(err.message ?? err);
  } finally {
    if (sampler) clearInterval(sampler);
    publisher?.close();
    resumer?.close();
    await server.stop();
  }
  return { config: cfg, results: [r] };
}

function describe(r) {
  const end =
    r.outcome === 'ack'
      ? `acked after ${f(r.time_to_ack_ms, 0)} ms`
      : r.close_code !== null
        ? `connection closed ${r.close_code} after ${f(r.closed_after_ms, 0)} ms, no ack`
        : `no ack (${r.outcome})`;
  return (
    `resume of ${r.missed} missed messages: ${end}; ${r.replayed} replayed` +
    (r.time_to_resumed_ms !== null
      ? `, \`resumed\` after ${f(r.time_to_resumed_ms, 0)} ms`
      : ', no `resumed`') +
    `; RSS ${mib(r.rss_before_bytes)} MiB before, peak ${mib(r.rss_peak_bytes)} MiB ` +
    `(${r.hwm_reset ? 'VmHWM, reset before the resume' : 'sampled'}; sampled peak ${mib(r.rss_peak_sampled_bytes)} MiB), ` +
    `server CPU ${r.server_cpu_ms.toFixed(0)} ms`
  );
}

function render(data) {
  if (data.skipped) return [`Skipped: ${data.skipped}.`, ''];
  const c = data.config;
  const r = data.results[0];
  const lines = [
    `nest-streaming only (the other two servers keep no history). A member joins one room and disconnects; ` +
      `${c.messages} messages are sent to the room (at most ${c.window} unacknowledged; \`FORGE_STREAMING_MAX_HISTORY_MESSAGES=${c.maxHistory}\`); ` +
      `the member reconnects and sends \`resume {rooms: {room: ${r.last_seen_seq ?? 0}}}\`. Peak RSS: VmHWM, reset just before the resume (and RSS sampled every ${c.sampleMs} ms).`,
    '',
  ];
  if (r.error || !r.outcome) return [...lines, `Failed: ${r.error ?? 'no result'}`, ''];
  lines.push(
    mdTable([
      [
        'missed',
        'outcome',
        'time to ack ms',
        'replayed',
        'first replayed ms',
        'RSS before MiB',
        'peak RSS MiB',
        'peak - before MiB',
        'server CPU ms',
      ],
      [
        String(r.missed),
        r.outcome === 'ack'
          ? 'ack'
          : r.close_code !== null
            ? `closed ${r.close_code} after ${f(r.closed_after_ms, 0)} ms`
            : r.outcome,
        f(r.time_to_ack_ms, 0),
        `${r.replayed} (${((100 * r.replayed) / r.missed).toFixed(0)}%)`,
        f(r.time_to_first_replayed_ms, 0),
        mib(r.rss_before_bytes),
        mib(r.rss_peak_bytes),
        mib(r.rss_peak_bytes - r.rss_before_bytes),
        f(r.server_cpu_ms, 0),
      ],
    ]),
    '',
    `- \`${r.command}\`; publishing the ${c.messages} messages took ${r.publish.ms} ms`,
    `- ${describe(r)}`,
    '',
  );
  return lines;
}

function targets(data) {
  const r = data.results?.[0];
  if (!r?.outcome) return [];
  return [
    {
      what: `resume of ${r.missed} missed messages: time to ack, replayed, peak RSS`,
      ours:
        (r.outcome === 'ack'
          ? `${f(r.time_to_ack_ms, 0)} ms`
          : r.close_code !== null
            ? `closed ${r.close_code}`
            : r.outcome) +
        `, ${r.replayed} replayed, peak RSS ${mib(r.rss_peak_bytes)} MiB (+${mib(r.rss_peak_bytes - r.rss_before_bytes)})`,
      target: 'acked, every message replayed, memory for a page',
      met: r.outcome === 'ack' && r.replayed >= r.missed,
    },
  ];
}

function summary(data) {
  const r = data.results?.[0];
  return {
    rows: [['resume'], [r?.outcome ? describe(r) : (data.skipped ?? r?.error ?? 'failed')]],
    notes: [],
  };
}

export default {
  id: 'resume',
  title: `Resume of ${cfg.messages} missed messages`,
  config: cfg,
  run,
  render,
  targets,
  summary,
};
